import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import { Hypervisor } from "../../hypervisor.js";
import { HypercallClient, type PortEndpoint } from "./client.js";
import type { PortDown } from "./protocol.js";
import { PortServer, watchUpcalls } from "./server.js";

/**
 * A stream-mode port (as a process-mode driver domain has): every message through msgpackr, both
 * ways, asynchronously; the ops the client asked for are counted.
 */
function streamClient(hv: Hypervisor, domid: number, ops: string[]): Promise<HypercallClient> {
  const listeners: Array<(raw: unknown) => void> = [];
  const deliver = (m: PortDown) => {
    const bytes = pack(m);
    setImmediate(() => {
      for (const l of [...listeners]) l(bytes);
    });
  };
  const server = new PortServer(hv, domid, { send: (m) => deliver(m) }, false);
  watchUpcalls(hv, domid, () => server.notifyUpcall());
  const endpoint: PortEndpoint = {
    on(event: string, fn: (raw: unknown) => void) {
      if (event === "message") listeners.push(fn);
      return endpoint;
    },
    off(_event: string, fn: (raw: unknown) => void) {
      listeners.splice(listeners.indexOf(fn), 1);
      return endpoint;
    },
    postMessage(value: unknown) {
      const req = unpack(value as Uint8Array) as { op: string };
      ops.push(req.op);
      setImmediate(() => server.handle(req));
    },
    close() {},
  };
  return HypercallClient.connect(endpoint);
}

describe("hypercall port in stream mode: upcall messages carry the pending ports", () => {
  it("events reach their handlers with no evtchnTakePending once the first upcall came", async () => {
    const memory = new MachineMemory({ bytes: 32 << 20 });
    const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
    const mk = (name: string) => {
      const d = hv.domains.create({ name, maxVcpus: 1, maxPages: 0, p2mPoolPages: 16 });
      if (typeof d === "number") throw new Error(`create ${d}`);
      return d;
    };
    const ops: string[] = [];
    const dd = mk("dd");
    const peer = mk("peer");
    const client = await streamClient(hv, dd.domid, ops);
    const remote = hv.hypercalls.evtchnAllocUnbound(peer.domid, 0x7ff0, dd.domid);
    const a = await client.evtchnBindInterdomain(peer.domid, remote);
    const remote2 = hv.hypercalls.evtchnAllocUnbound(peer.domid, 0x7ff0, dd.domid);
    const b = await client.evtchnBindInterdomain(peer.domid, remote2);
    const got: number[] = [];
    client.bind(a, (p) => got.push(p));
    client.bind(b, (p) => got.push(p));
    const loop = client.eventLoop();
    const until = async (n: number) => {
      const end = performance.now() + 5000;
      while (got.length < n && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
    };
    // A new interdomain binding is delivered an event at once (as Xen does): one per port.
    await until(2);
    assert.deepEqual(got.splice(0).sort(), [a, b].sort());
    assert.equal(hv.hypercalls.evtchnSend(peer.domid, remote), 0);
    await until(1);
    // Two ports pending together come in one upcall message.
    assert.equal(hv.hypercalls.evtchnSend(peer.domid, remote), 0);
    assert.equal(hv.hypercalls.evtchnSend(peer.domid, remote2), 0);
    await until(3);
    for (let i = 0; i < 20; i++) {
      assert.equal(hv.hypercalls.evtchnSend(peer.domid, i % 2 ? remote : remote2), 0);
      await until(4 + i);
    }
    assert.equal(got.length, 23, `${got.join(",")} / ${ops.join(",")}`);
    assert.deepEqual(got.slice(0, 3).sort(), [a, a, b].sort());
    const takes = ops.filter((o) => o === "evtchnTakePending").length;
    assert.ok(takes <= 1, `evtchnTakePending asked ${takes} times (only before the first upcall)`);
    client.close();
    await loop;
  });
});
