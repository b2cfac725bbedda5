import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { layout } from "@xenon/hypervisor";
import { XenstoreRing } from "./ring.js";
import { payloadFor, TestClient } from "./testkit.js";
import { decodeHeader, encodeMessage, splitPayload, XS_HEADER_SIZE, XS_TYPES, type XsTypeName } from "./wire.js";
import { Xenstored } from "./xenstored.js";

const F = layout.XenstoreDomainInterface.fields;
const RING = layout.XENSTORE_RING_SIZE;

/** The guest's half of a ring page, written in plain JS the way a C client would. */
class GuestEnd {
  readonly page = new Uint8Array(new SharedArrayBuffer(4096));
  readonly dv = new DataView(this.page.buffer);
  notifies = 0;
  private nextReq = 1;
  private inbox = new Uint8Array(0);

  constructor(start = 0) {
    for (const f of [F.req_cons, F.req_prod, F.rsp_cons, F.rsp_prod]) this.set(f.offset, start);
  }
  get(off: number): number {
    return this.dv.getUint32(off, true);
  }
  set(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
  }
  /** Writes as many bytes as fit; returns how many. */
  produce(bytes: Uint8Array): number {
    const prod = this.get(F.req_prod.offset);
    const free = RING - ((prod - this.get(F.req_cons.offset)) >>> 0);
    const n = Math.min(free, bytes.length);
    for (let i = 0; i < n; i++) this.page[F.req.offset + ((prod + i) & (RING - 1))] = bytes[i]!;
    this.set(F.req_prod.offset, prod + n);
    return n;
  }
  /** Reads everything in rsp into the inbox. */
  consume(): void {
    const cons = this.get(F.rsp_cons.offset);
    const n = (this.get(F.rsp_prod.offset) - cons) >>> 0;
    const got = new Uint8Array(n);
    for (let i = 0; i < n; i++) got[i] = this.page[F.rsp.offset + ((cons + i) & (RING - 1))]!;
    this.set(F.rsp_cons.offset, cons + n);
    const all = new Uint8Array(this.inbox.length + n);
    all.set(this.inbox);
    all.set(got, this.inbox.length);
    this.inbox = all;
  }
  /** Whole messages received so far, as {type, reqId, strings}. */
  takeMessages(): { type: number; reqId: number; payload: Uint8Array }[] {
    const out = [];
    while (this.inbox.length >= XS_HEADER_SIZE) {
      const h = decodeHeader(this.inbox);
      if (this.inbox.length < XS_HEADER_SIZE + h.len) break;
      out.push({ type: h.type, reqId: h.reqId, payload: this.inbox.slice(XS_HEADER_SIZE, XS_HEADER_SIZE + h.len) });
      this.inbox = this.inbox.slice(XS_HEADER_SIZE + h.len);
    }
    return out;
  }
  request(type: XsTypeName, args: string[]): Uint8Array {
    return encodeMessage(XS_TYPES[type], this.nextReq++, 0, payloadFor(type, args));
  }
}

function setup(domid: number, start = 0, daemon = new Xenstored()) {
  // Introduced as the toolstack would, so /local/domain/<domid> exists and the domain may read it.
  const dom0 = new TestClient(daemon, 0);
  if (dom0.raw("IS_DOMAIN_INTRODUCED", [String(domid)]).payload[0] !== 0x54) {
    dom0.ok("INTRODUCE", [String(domid), "0", "0"]);
    dom0.ok("SET_PERMS", [`/local/domain/${domid}`, `n${domid}`]);
  }
  const guest = new GuestEnd(start);
  const closes: string[] = [];
  const ring = new XenstoreRing(
    daemon,
    { domid, privileged: false },
    guest.page,
    { notify: () => guest.notifies++, onClosed: (_r, f) => closes.push(f) },
    (t) => daemon.connectDomain(domid, t),
  );
  return { daemon, guest, ring, closes };
}

/** Sends one request through the ring, driving both sides until its reply is complete. */
function roundTrip(guest: GuestEnd, ring: XenstoreRing, msg: Uint8Array): { type: number; payload: Uint8Array } {
  let off = 0;
  for (let i = 0; i < 100; i++) {
    off += guest.produce(msg.subarray(off));
    ring.kick();
    guest.consume();
    const m = guest.takeMessages().filter((x) => x.type !== XS_TYPES.WATCH_EVENT);
    if (m.length > 0) return m[0]!;
  }
  throw new Error("no reply");
}

describe("XenStore ring transport", () => {
  it("answers requests across index wraparound (u32 and ring) in every split", () => {
    // Indices start just below 2^32 and off a ring boundary: both wraps are crossed.
    const { guest, ring, daemon } = setup(5, 0xffffff00);
    new TestClient(daemon, 0).write("/local/domain/5/x", "hello");
    for (let i = 0; i < 40; i++) {
      const r = roundTrip(guest, ring, guest.request("READ", ["x"]));
      assert.equal(r.type, XS_TYPES.READ);
      assert.equal(Buffer.from(r.payload).toString(), "hello");
    }
    assert.ok(guest.get(F.req_prod.offset) < 0x1000, "req_prod wrapped past 2^32");
    assert.equal(
      guest.get(F.server_features.offset),
      layout.XENSTORE_SERVER_FEATURE_RECONNECTION | layout.XENSTORE_SERVER_FEATURE_ERROR,
    );
  });

  it("takes a request written in pieces (header, then payload byte by byte)", () => {
    const { guest, ring, daemon } = setup(3);
    new TestClient(daemon, 0).write("/local/domain/3/k", "v");
    const msg = guest.request("READ", ["k"]);
    for (let i = 0; i < msg.length; i++) {
      guest.produce(msg.subarray(i, i + 1));
      ring.kick();
      guest.consume();
      const got = guest.takeMessages();
      assert.equal(got.length, i === msg.length - 1 ? 1 : 0, `after byte ${i}`);
    }
  });

  it("a reply bigger than the ring arrives whole as the guest drains it", () => {
    const { guest, ring, daemon } = setup(4);
    const dom0 = new TestClient(daemon, 0);
    const names: string[] = [];
    for (let i = 0; i < 200; i++) names.push(`entry-number-${i}`);
    for (const n of names) dom0.write(`/local/domain/4/d/${n}`, "");
    const r = roundTrip(guest, ring, guest.request("DIRECTORY", ["d"]));
    assert.equal(r.type, XS_TYPES.DIRECTORY);
    assert.ok(r.payload.length > RING);
    assert.deepEqual(splitPayload(r.payload).strings.sort(), names.sort());
  });

  it("watch events come over the ring", () => {
    const { guest, ring, daemon } = setup(6);
    roundTrip(guest, ring, guest.request("WATCH", ["w", "tok"]));
    guest.consume();
    const first = guest.takeMessages();
    // The registration event may already have been taken with the reply; collect it either way.
    new TestClient(daemon, 0).write("/local/domain/6/w/a", "1");
    ring.kick();
    guest.consume();
    const events = [...first, ...guest.takeMessages()].filter((m) => m.type === XS_TYPES.WATCH_EVENT);
    assert.ok(events.length >= 1);
    const last = splitPayload(events.at(-1)!.payload).strings;
    assert.deepEqual(last, ["w/a", "tok"]);
  });

  it("a reconnect request drops watches, transactions and queued bytes, empties both rings and starts afresh", () => {
    const { guest, ring, daemon } = setup(12);
    const dom0 = new TestClient(daemon, 0);
    roundTrip(guest, ring, guest.request("WATCH", ["data", "tok"]));
    const tx = roundTrip(guest, ring, guest.request("TRANSACTION_START", [""]));
    assert.equal(tx.type, XS_TYPES.TRANSACTION_START);
    // Half a request and an unread event are in flight when the guest asks to reconnect.
    guest.produce(guest.request("READ", ["name"]).subarray(0, 10));
    dom0.write("/local/domain/12/data/x", "1");
    guest.set(F.connection.offset, layout.XENSTORE_RECONNECT);
    const before = guest.notifies;
    ring.kick();
    assert.equal(guest.get(F.connection.offset), layout.XENSTORE_CONNECTED);
    assert.ok(guest.notifies > before, "the guest is told");
    assert.equal(guest.get(F.req_cons.offset), guest.get(F.req_prod.offset));
    assert.equal(guest.get(F.rsp_prod.offset), guest.get(F.rsp_cons.offset));
    guest.takeMessages(); // forget whatever the guest had half-read
    // A fresh connection: the old watch is gone, the transaction id is unknown.
    dom0.write("/local/domain/12/data/y", "2");
    ring.kick();
    guest.consume();
    assert.deepEqual(guest.takeMessages(), []);
    const end = encodeMessage(
      XS_TYPES.TRANSACTION_END,
      99,
      Number(splitPayload(tx.payload).strings[0]),
      payloadFor("TRANSACTION_END", ["T"]),
    );
    const r = roundTrip(guest, ring, end);
    assert.equal(r.type, XS_TYPES.ERROR);
    assert.equal(splitPayload(r.payload).strings[0], "ENOENT");
    assert.equal(roundTrip(guest, ring, guest.request("WRITE", ["k", "after"])).type, XS_TYPES.WRITE);
    assert.equal(Buffer.from(roundTrip(guest, ring, guest.request("READ", ["k"])).payload).toString(), "after");
    assert.ok(!ring.closed);
  });

  it("a producer more than a ring ahead is a bad index: error 2, connection dropped, no throw", () => {
    const { guest, ring, daemon, closes } = setup(7);
    const before = daemon.connectionCount;
    guest.set(F.req_prod.offset, RING + 1);
    ring.kick();
    assert.equal(guest.get(F.error.offset), layout.XENSTORE_ERROR_RINGIDX);
    assert.deepEqual(closes, ["ringidx"]);
    assert.equal(daemon.connectionCount, before - 1);
    assert.ok(guest.notifies > 0, "the guest is told");
    ring.kick(); // ignored from now on
    assert.ok(ring.closed);
  });

  it("a consumer index the daemon never produced is a bad index too", () => {
    const { guest, ring, closes } = setup(8);
    guest.set(F.rsp_cons.offset, 0x80000000);
    guest.produce(guest.request("READ", ["x"]));
    ring.kick();
    assert.equal(guest.get(F.error.offset), layout.XENSTORE_ERROR_RINGIDX);
    assert.deepEqual(closes, ["ringidx"]);
  });

  it("an oversize payload length is a protocol error: error 3, connection dropped", () => {
    const { guest, ring, daemon, closes } = setup(9);
    const before = daemon.connectionCount;
    const h = new Uint8Array(16);
    new DataView(h.buffer).setUint32(12, 4097, true);
    guest.produce(h);
    ring.kick();
    assert.equal(guest.get(F.error.offset), layout.XENSTORE_ERROR_PROTO);
    assert.deepEqual(closes, ["proto"]);
    assert.equal(daemon.connectionCount, before - 1);
  });

  it("a domain flooding requests without reading does not stall another domain", () => {
    const daemon = new Xenstored();
    const flood = setup(10, 0, daemon);
    const calm = setup(11, 0, daemon);
    new TestClient(daemon, 0).write("/local/domain/11/k", "calm");
    // The flooder never consumes rsp: its replies back up, the daemon stalls its connection,
    // and its ring stays full.
    let sent = 0;
    let pending: Uint8Array = new Uint8Array(0);
    for (let round = 0; round < 50; round++) {
      for (;;) {
        if (pending.length === 0) pending = flood.guest.request("WRITE", [`f${sent++ % 50}`, "x".repeat(40)]);
        const n = flood.guest.produce(pending);
        pending = pending.subarray(n);
        if (pending.length > 0) break;
      }
      flood.ring.kick();
      const r = roundTrip(calm.guest, calm.ring, calm.guest.request("READ", ["k"]));
      assert.equal(Buffer.from(r.payload).toString(), "calm");
    }
    const held = (flood.guest.get(F.req_prod.offset) - flood.guest.get(F.req_cons.offset)) >>> 0;
    assert.ok(held > 0, "the flooder's requests wait in its own ring");
    // ...not in the daemon: at most one ring's worth of parsed requests is held for it.
    assert.ok(flood.ring.port.backlog <= RING / 16, `backlog ${flood.ring.port.backlog}`);
    assert.ok(sent > 40, `the flooder kept writing (${sent} requests)`);
    assert.ok(!flood.ring.closed);
  });

  it("random page contents and indices never throw", () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    for (let trial = 0; trial < 300; trial++) {
      const { guest, ring } = setup(20 + (trial % 50));
      for (let i = 0; i < 4096; i++) guest.page[i] = rnd() & 0xff;
      const small = (v: number) => (trial % 2 === 0 ? v & 0x7ff : v);
      guest.set(F.req_prod.offset, small(rnd()));
      guest.set(F.rsp_cons.offset, small(rnd()));
      for (let k = 0; k < 5; k++) {
        ring.kick();
        guest.set(F.req_prod.offset, guest.get(F.req_prod.offset) + (rnd() & 0x3ff));
      }
    }
  });
});
