import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MgmtClient, MgmtError } from "../mgmt/client.js";
import { decodeReply } from "../mgmt/protocol.js";
import { XenonHost } from "./host.js";

/**
 * A host in this process, driven through its management endpoint: the libxl API end to end
 * (create, list, console, pause, destroy, errors) and the wire (a raw TCP client writing a
 * WebSocket frame byte by byte, cut-off and malformed frames).
 */
const pool = (n: number) => ({
  name: "Pool-0",
  scheduler: "credit2" as const,
  pcpus: Array.from({ length: n }, (_, id) => ({ id, cls: "big", speed: 1024 })),
});

const hello = (name: string) => ({
  name,
  memoryMiB: 4,
  maxmemMiB: 4,
  vcpus: 1,
  maxvcpus: 1,
  kernel: "hello",
  cmdline: "",
  onPoweroff: "preserve",
  onReboot: "restart",
  onCrash: "destroy",
  onWatchdog: "destroy",
  sched: {},
  disks: [],
  vifs: [],
  virtio: [],
});
const spin = (name: string) => ({ ...hello(name), kernel: "spin", cmdline: `name=${name} report=1000000 total=0` });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A WebSocket client by hand: the opening handshake, then raw bytes. */
async function rawWs(url: string): Promise<{ sock: Socket; frames: () => Promise<Uint8Array[]> }> {
  const { hostname, port, pathname, search } = new URL(url);
  const sock = connect(Number(port), hostname);
  await new Promise<void>((r) => sock.once("connect", () => r()));
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
  });
  sock.write(
    `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  for (let i = 0; i < 200 && !buf.includes("\r\n\r\n"); i++) await sleep(5);
  const head = buf.subarray(0, buf.indexOf("\r\n\r\n") + 4).toString();
  assert.match(head, /^HTTP\/1\.1 101/);
  assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  buf = buf.subarray(head.length);
  /** Server frames so far (unmasked, short payloads). */
  const frames = async () => {
    await sleep(50);
    const out: Uint8Array[] = [];
    let off = 0;
    while (off + 2 <= buf.length) {
      const len = buf[off + 1]! & 0x7f;
      assert.ok(len < 126, "short frames only in this test");
      out.push(buf.subarray(off + 2, off + 2 + len));
      off += 2 + len;
    }
    buf = buf.subarray(off);
    return out;
  };
  return { sock, frames };
}

/** A masked client frame (opcode 2 = binary, 1 = text) of a short payload. */
function clientFrame(payload: Uint8Array, opcode = 2): Uint8Array {
  const mask = [0x37, 0xfa, 0x21, 0x3d];
  const out = new Uint8Array(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  out.set(mask, 2);
  payload.forEach((b, i) => {
    out[6 + i] = b ^ mask[i % 4]!;
  });
  return out;
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

describe("xenon host: the management endpoint over the libxl API", () => {
  let host: XenonHost;
  let c: MgmtClient;
  before(async () => {
    host = await XenonHost.start({ pools: [pool(2)], hostMemoryMiB: 128 });
    c = await MgmtClient.connect(host.url);
  });
  after(async () => {
    c.close();
    await host.close();
  });

  it("a management connection without the host's token, or with a wrong one, is refused (EACCES) and can do nothing", async () => {
    const bare = host.url.replace(/\/\?token=.*$/, "");
    assert.notEqual(bare, host.url, "the URL the host gives carries its token");
    for (const url of [bare, `${bare}/?token=`, `${bare}/?token=${"A".repeat(32)}`, `${host.url}x`]) {
      const intruder = await MgmtClient.connect(url);
      await assert.rejects(intruder.request("domain.list"), (e: Error & { code?: string }) => {
        assert.equal(e.code, "EACCES", url);
        assert.match(e.message, /no or wrong token/);
        return true;
      });
      intruder.close();
    }
  });

  it("hello, info, and Domain-0 in the list", async () => {
    assert.deepEqual(await c.request("hello"), { protocol: 1, product: "xenon" });
    const info = await c.request<{ nrCpus: number; scheduler: string }>("host.info");
    assert.equal(info.nrCpus, 2);
    assert.equal(info.scheduler, "credit2");
    const list = await c.request<Array<{ domid: number; name: string }>>("domain.list");
    assert.deepEqual(
      list.map((d) => [d.domid, d.name]),
      [
        [0, "Domain-0"],
        [1, "Xenstore"],
      ],
    );
  });

  it("create: the console stream carries the guest's output; preserve keeps it listed as shut down", async () => {
    const { domid } = await c.request<{ domid: number }>("domain.create", { config: hello("h1") });
    assert.ok(domid > 0);
    let text = "";
    const end = await Promise.race([
      c.stream("domain.console", { dom: "h1" }, { data: (b) => (text += Buffer.from(b).toString()) }),
      sleep(3000).then(() => "timeout"),
    ]);
    // on_poweroff=preserve: the stream stays open; the text is there.
    assert.equal(end, "timeout");
    assert.match(text, /Hello from Xenon guest/);
    const [d] = await c.request<Array<{ shutdown: boolean; shutdownReason: number }>>("domain.list", { dom: "h1" });
    assert.equal(d?.shutdown, true);
    assert.equal(d?.shutdownReason, 0);
    await c.request("domain.destroy", { dom: domid });
    await assert.rejects(c.request("domain.list", { dom: "h1" }), /h1 is an invalid domain identifier/);
  });

  it("create paused: nothing runs until unpause", async () => {
    const { domid } = await c.request<{ domid: number }>("domain.create", { config: spin("pz"), paused: true });
    const row = async () =>
      (await c.request<Array<{ cpuTimeNs: number; paused: boolean }>>("domain.list", { dom: domid }))[0]!;
    await sleep(150);
    assert.equal((await row()).paused, true);
    assert.equal((await row()).cpuTimeNs, 0, "never ran");
    await c.request("domain.unpause", { dom: domid });
    for (let i = 0; i < 100 && (await row()).cpuTimeNs === 0; i++) await sleep(10);
    assert.ok((await row()).cpuTimeNs > 0);
    await c.request("domain.destroy", { dom: domid });
  });

  it("pause stops a running guest, unpause resumes it, destroy ends its console stream", async () => {
    const { domid } = await c.request<{ domid: number }>("domain.create", { config: spin("s1") });
    const time = async () =>
      (await c.request<Array<{ cpuTimeNs: number; paused: boolean }>>("domain.list", { dom: domid }))[0]!;
    await sleep(200);
    await c.request("domain.pause", { dom: "s1" });
    const p = await time();
    assert.equal(p.paused, true);
    await sleep(200);
    assert.ok((await time()).cpuTimeNs - p.cpuTimeNs < 50e6, "no progress while paused");
    await c.request("domain.unpause", { dom: "s1" });
    await sleep(300);
    assert.ok((await time()).cpuTimeNs > p.cpuTimeNs, "runs again");
    const ended = c.stream("domain.console", { dom: domid }, {});
    await sleep(50);
    await c.request("domain.destroy", { dom: "s1" });
    assert.equal(await ended, "domain destroyed");
  });

  it("reboot with on_reboot=restart: the events stream tells of the shutdown, the destruction and the new domain", async () => {
    const events: Array<Record<string, unknown>> = [];
    const sub = await c.openStream("events.subscribe", {}, { event: (e) => events.push({ ...e }) });
    const { domid } = await c.request<{ domid: number }>("domain.create", { config: spin("rb") });
    await sleep(100);
    await c.request("domain.reboot", { dom: "rb" });
    let again: Array<{ domid: number; name: string }> = [];
    for (let i = 0; i < 200; i++) {
      again = (await c.request<Array<{ domid: number; name: string }>>("domain.list")).filter((d) => d.name === "rb");
      if (again.length === 1 && again[0]!.domid !== domid && events.length >= 4) break;
      await sleep(10);
    }
    assert.equal(again.length, 1);
    assert.notEqual(again[0]!.domid, domid, "a new domain under the same name");
    const kinds = events.map((e) => `${e.type}:${e.domid}`);
    assert.deepEqual(kinds.slice(0, 4), [
      `created:${domid}`,
      `shutdown:${domid}`,
      `destroyed:${domid}`,
      `created:${again[0]!.domid}`,
    ]);
    assert.equal(events[1]!.reason, 1);
    assert.equal(events[1]!.action, "restart");
    await c.request("domain.destroy", { dom: "rb" });
    await c.request("stream.cancel", { stream: sub.id });
    assert.equal(await sub.ended, "cancelled");
    await assert.rejects(c.request("stream.cancel", { stream: sub.id }), /no stream/);
  });

  it("failures come back as error replies with xl's wording; the host keeps serving", async () => {
    const fail = async (op: string, args: Record<string, unknown>, re: RegExp, code?: string) => {
      await assert.rejects(c.request(op, args), (e: unknown) => {
        assert.ok(e instanceof MgmtError);
        assert.match(e.message, re);
        if (code !== undefined) assert.equal(e.code, code);
        return true;
      });
    };
    await fail("domain.pause", { dom: "nosuch" }, /^nosuch is an invalid domain identifier \(rc=-6\)$/, "ESRCH");
    await fail(
      "domain.create",
      { config: { ...hello("k"), kernel: "/nonexistent.elf" } },
      /kernel '\/nonexistent.elf': not found/,
    );
    await fail("domain.create", { config: { ...hello("k"), memoryMiB: 0 } }, /memory=0 is out of range/, "EINVAL");
    await fail("domain.create", { config: { ...hello("k"), pool: "nopool" } }, /cpupool 'nopool' does not exist/);
    const junk = join(mkdtempSync(join(tmpdir(), "xenon-host-test-")), "junk.elf");
    writeFileSync(junk, "\x7fELF but nothing else");
    await fail("domain.create", { config: { ...hello("junk"), kernel: junk } }, /^domain \d+ \(junk\): .*junk\.elf: /);
    await fail(
      "domain.create",
      { config: { ...hello("big"), memoryMiB: 3000, maxmemMiB: 3000 } },
      /domain \d+ \(big\): /,
    );
    await fail("domain.create", { config: "x" }, /'config' must be a map/, "EINVAL");
    await fail("domain.create", { config: { ...hello("k"), cpus: 5 } }, /cpus must be a list/, "EINVAL");
    await fail("domain.create", { config: { ...hello("k"), onCrash: "explode" } }, /Unknown on_crash action/);
    await fail("domain.create", { config: { ...hello("k"), sched: { weight: "x" } } }, /sched.weight/);
    await fail("domain.create", { config: { ...hello("k"), sched: null } }, /sched must be a map/);
    await fail("domain.create", { config: { ...hello("k"), disks: ["xvda"] } }, /disk 'xvda': no vdev/);
    await fail("domain.create", { config: { ...hello("k"), disks: [7] } }, /disk must be a list of strings/);
    await fail("domain.destroy", { dom: 0 }, /cannot destroy the control domain/);
    await fail("no.such.op", {}, /unknown op 'no.such.op'/, "ENOSYS");
    await fail("vcpu.pin", { dom: 0 }, /'vcpu' is required/);
    const list = await c.request<unknown[]>("domain.list");
    assert.equal(list.length, 2, "Domain-0 and Xenstore: the failed creations left nothing behind");
  });

  it("wire: a request written one byte at a time is answered; bad frames get EPROTO and the connection lives", async () => {
    const { sock, frames } = await rawWs(host.url);
    const hello = hex("83 a2 6964 01 a2 6f70 a5 68656c6c6f a4 61726773 80");
    for (const b of clientFrame(hello)) {
      sock.write(Uint8Array.of(b));
      await sleep(1);
    }
    let got = await frames();
    assert.equal(got.length, 1);
    assert.deepEqual(decodeReply(got[0]!), { id: 1, ok: true, result: { protocol: 1, product: "xenon" } });
    // Every truncated prefix of the msgpack value, each as a whole WebSocket message.
    for (let n = 0; n < hello.length; n++) sock.write(clientFrame(hello.subarray(0, n)));
    got = await frames();
    assert.equal(got.length, hello.length);
    for (const f of got) {
      const r = decodeReply(f);
      assert.ok("ok" in r && !r.ok && r.error.code === "EPROTO" && r.id === null);
    }
    // A request whose id is readable gets its error under that id.
    sock.write(clientFrame(hex("81 a2 6964 05")));
    sock.write(clientFrame(new TextEncoder().encode("hello"), 1));
    got = await frames();
    assert.deepEqual(decodeReply(got[0]!), {
      id: 5,
      ok: false,
      error: { code: "EPROTO", message: "request without an op" },
    });
    assert.match(JSON.stringify(decodeReply(got[1]!)), /text frames are not part of the protocol/);
    // Still usable, and a half-written frame followed by a hang-up harms nothing.
    sock.write(clientFrame(hello));
    assert.equal((await frames()).length, 1);
    sock.write(clientFrame(hello).subarray(0, 7));
    sock.destroy();
    assert.deepEqual(await c.request("hello"), { protocol: 1, product: "xenon" });
  });
});
