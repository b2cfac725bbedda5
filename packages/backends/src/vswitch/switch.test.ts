import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { formatMac, parseMac } from "./ethernet.js";
import { MessagePortNetLink, MessagePortSwitchPort } from "./message_port.js";
import type { SwitchPort } from "./port.js";
import { VirtualSwitch } from "./switch.js";

/** A port that records what the switch delivered and lets the test send frames in. */
function port(name: string): SwitchPort & { got: Uint8Array[]; send(f: Uint8Array): void } {
  let ingress: (f: Uint8Array) => void = () => {};
  const got: Uint8Array[] = [];
  return {
    name,
    got,
    deliver: (f) => got.push(f),
    attach: (fn) => {
      ingress = fn;
    },
    send: (f) => ingress(f),
  };
}

const mac = (n: number) => `00:16:3e:00:00:${n.toString(16).padStart(2, "0")}`;
const BCAST = "ff:ff:ff:ff:ff:ff";
function frame(dst: string, src: string, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  const d = dst.split(":").map((x) => Number.parseInt(x, 16));
  const s = src.split(":").map((x) => Number.parseInt(x, 16));
  f.set(d, 0);
  f.set(s, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

function rig(opts: { ageingMs?: number; fdbMax?: number } = {}) {
  let now = 0;
  const sw = new VirtualSwitch({ now: () => now, ...opts });
  const ps = [1, 2, 3].map((i) => port(`vif${i}.0`));
  for (const p of ps) sw.plug(p);
  return { sw, ps: ps as [(typeof ps)[0], (typeof ps)[0], (typeof ps)[0]], tick: (ms: number) => (now += ms) };
}

describe("virtual switch (xenbr0)", () => {
  it("floods broadcast and unknown unicast to every other port, never back to the sender", () => {
    const { sw, ps } = rig();
    ps[0].send(frame(BCAST, mac(1)));
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [0, 1, 1],
    );
    ps[0].send(frame(mac(9), mac(1)));
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [0, 2, 2],
    );
    assert.notEqual(ps[1].got[0]!.buffer, ps[2].got[0]!.buffer, "each port owns its own copy");
    assert.equal(sw.flooded, 2);
  });

  it("learns source MACs and then forwards unicast to one port only", () => {
    const { sw, ps } = rig();
    ps[1].send(frame(BCAST, mac(2)));
    ps[0].send(frame(mac(2), mac(1)));
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [1, 1, 1],
      "port 1 and 3 saw the broadcast; the unicast to mac 2 went to port 2 only",
    );
    assert.deepEqual(sw.macs().sort(), [
      [mac(1), "vif1.0"],
      [mac(2), "vif2.0"],
    ]);
    assert.equal(sw.forwarded, 1);
    assert.equal(sw.counters("vif2.0")!.txPackets, 1);
    assert.equal(sw.counters("vif2.0")!.rxPackets, 1);
    assert.equal(sw.counters("vif1.0")!.txBytes, 60);
  });

  it("a MAC that moves is re-learned on its new port", () => {
    const { ps } = rig();
    ps[1].send(frame(BCAST, mac(2)));
    ps[2].send(frame(BCAST, mac(2)));
    ps[0].send(frame(mac(2), mac(1)));
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [2, 1, 2],
    );
  });

  it("entries age out: after the ageing time the destination is unknown and flooded again", () => {
    const { sw, ps, tick } = rig({ ageingMs: 1000 });
    ps[1].send(frame(BCAST, mac(2)));
    tick(999);
    ps[0].send(frame(mac(2), mac(1)));
    assert.equal(ps[2].got.length, 1, "still learned: forwarded");
    tick(1);
    ps[0].send(frame(mac(2), mac(1)));
    assert.equal(ps[2].got.length, 2, "aged: flooded");
    assert.deepEqual(sw.macs(), [[mac(1), "vif1.0"]]);
  });

  it("no hairpin: a frame to a MAC learned on the ingress port is filtered and counted", () => {
    const { sw, ps } = rig();
    ps[0].send(frame(BCAST, mac(1)));
    ps[0].send(frame(BCAST, mac(4)));
    ps[0].send(frame(mac(4), mac(1)));
    assert.equal(sw.counters("vif1.0")!.filtered, 1);
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [0, 2, 2],
    );
  });

  it("uplinks (other hosts' switches) keep split horizon: a frame from one is never relayed to another", () => {
    const sw = new VirtualSwitch({ now: () => 0 });
    const vif = port("vif1.0");
    const a = { ...port("pool-a"), uplink: true };
    const b = { ...port("pool-b"), uplink: true };
    for (const p of [vif, a, b]) sw.plug(p);
    a.send(frame(BCAST, mac(10)));
    assert.equal(vif.got.length, 1, "a local guest hears host a's broadcast");
    assert.equal(b.got.length, 0, "host b hears it from host a directly, not through us");
    b.send(frame(BCAST, mac(11)));
    a.send(frame(mac(11), mac(10)));
    assert.equal(b.got.length, 0, "not even to a MAC learned behind b");
    assert.equal(sw.counters("pool-a")?.filtered, 1);
    vif.send(frame(BCAST, mac(1)));
    assert.equal(a.got.length, 1, "a local broadcast goes to every uplink");
    assert.equal(b.got.length, 1);
    vif.send(frame(mac(10), mac(1)));
    assert.equal(a.got.length, 2, "and local unicast to the uplink that MAC was learned on");
    assert.equal(b.got.length, 1);
  });

  it("malformed frames are dropped and counted on the ingress port: runt, oversized, bad source MAC", () => {
    const { sw, ps } = rig();
    for (let len = 0; len < 14; len++) ps[0].send(frame(BCAST, mac(1)).subarray(0, len));
    ps[0].send(frame(BCAST, mac(1), 1515));
    ps[0].send(frame(BCAST, BCAST));
    ps[0].send(frame(BCAST, "01:00:5e:00:00:01"));
    ps[0].send(frame(BCAST, "00:00:00:00:00:00"));
    assert.equal(sw.counters("vif1.0")!.rxErrors, 18);
    assert.equal(sw.counters("vif1.0")!.rxPackets, 0);
    assert.deepEqual(
      ps.map((p) => p.got.length),
      [0, 0, 0],
    );
    ps[0].send(frame(BCAST, mac(1), 14));
    ps[0].send(frame(BCAST, mac(1), 1514));
    assert.equal(ps[1].got.length, 2, "14 and mtu + 14 bytes are fine");
  });

  it("the table is bounded: a port spraying source MACs evicts the oldest entries", () => {
    const { sw, ps } = rig({ fdbMax: 8 });
    for (let i = 1; i <= 20; i++) ps[0].send(frame(BCAST, mac(i)));
    assert.equal(sw.fdb.size, 8);
    assert.ok(sw.macs().some(([m]) => m === mac(20)));
  });

  it("unplug forgets the port's MACs and ignores its later frames; a throwing port hurts no one", () => {
    const lines: string[] = [];
    const sw = new VirtualSwitch({ log: (l) => lines.push(l) });
    const a = port("vif1.0");
    const b = port("vif2.0");
    const bad: SwitchPort = {
      name: "vif3.0",
      deliver: () => {
        throw new Error("transport gone");
      },
      attach: () => {},
    };
    sw.plug(a);
    sw.plug(bad);
    sw.plug(b);
    assert.throws(() => sw.plug(port("vif1.0")), /already plugged/);
    a.send(frame(BCAST, mac(1)));
    assert.equal(b.got.length, 1);
    assert.match(lines.join(), /vif3.0: deliver failed: transport gone/);
    assert.ok(sw.unplug("vif1.0"));
    a.send(frame(BCAST, mac(1)));
    assert.equal(b.got.length, 1);
    assert.deepEqual(sw.macs(), []);
    assert.deepEqual(sw.portNames(), ["vif3.0", "vif2.0"]);
  });

  it("MAC text: parse, format; malformed text is refused", () => {
    assert.equal(formatMac(parseMac("00:16:3E:0a:0b:0c")!), "00:16:3e:0a:0b:0c");
    for (const bad of ["", "00:16:3e:0a:0b", "00:16:3e:0a:0b:0c:0d", "0g:16:3e:0a:0b:0c", "00-16-3e-0a-0b-0c"])
      assert.equal(parseMac(bad), null, bad);
  });

  it("over a MessagePort: frames arrive transferred; a message that is not a frame is counted", async () => {
    const sw = new VirtualSwitch();
    const ch = new MessageChannel();
    sw.plug(new MessagePortSwitchPort("vif1.0", ch.port1));
    const other = port("vif2.0");
    sw.plug(other);
    const link = new MessagePortNetLink(ch.port2);
    const got: Uint8Array[] = [];
    link.onReceive((f) => got.push(f));
    const f = frame(BCAST, mac(1));
    link.transmit(f);
    assert.equal(f.byteLength, 0, "transferred: the sender gave it up");
    ch.port2.postMessage({ not: "a frame" });
    ch.port2.postMessage("text");
    other.send(frame(mac(1), mac(2)));
    const until = Date.now() + 2000;
    while ((got.length < 1 || sw.counters("vif1.0")!.rxErrors < 2) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(other.got.length, 1);
    assert.equal(sw.counters("vif1.0")!.rxErrors, 2);
    assert.equal(got.length, 1);
    assert.equal(got[0]![13], 0xb5);
    ch.port1.close();
  });
});
