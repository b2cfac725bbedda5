import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { splitPayload, XS_TYPES } from "@xenon/backends";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  type Domain,
  GNTTAB_RESERVED_XENSTORE,
  GUEST_XENSTORE_GFN,
  HvmParam,
  Hypervisor,
  layout,
  p2mPoolPagesFor,
} from "@xenon/hypervisor";
import { XenstoreLink } from "@xenon/toolstack";

/**
 * The XenStore domain in its worker, serving rings the builder set up, driven by "guests" that
 * are plain TypeScript writing their ring page through guest-physical accesses and notifying
 * with EVTCHNOP_send, exactly the moves a C client makes (the C client itself is tested in
 * xenstore_guest.test.ts).
 */
const F = layout.XenstoreDomainInterface.fields;
const RING = layout.XENSTORE_RING_SIZE;
const enc = new TextEncoder();

class RingGuest {
  private reqId = 1;
  private inbox: number[] = [];
  readonly base: number;
  readonly port: number;
  constructor(
    readonly hv: Hypervisor,
    readonly d: Domain,
  ) {
    this.base = d.hvmParams[HvmParam.STORE_PFN]! * 4096;
    this.port = d.hvmParams[HvmParam.STORE_EVTCHN]!;
  }
  u32(f: { offset: number }): number {
    return this.d.guest.readU32(this.base + f.offset) >>> 0;
  }
  setU32(f: { offset: number }, v: number): void {
    this.d.guest.writeU32(this.base + f.offset, v >>> 0);
  }
  notify(): void {
    assert.equal(this.hv.hypercalls.evtchnSend(this.d.domid, this.port), 0);
  }
  /** Writes bytes into req as room appears, notifying after each piece. */
  async produce(bytes: Uint8Array): Promise<void> {
    let off = 0;
    const end = Date.now() + 3000;
    while (off < bytes.length) {
      const prod = this.u32(F.req_prod);
      const n = Math.min(RING - ((prod - this.u32(F.req_cons)) >>> 0), bytes.length - off);
      for (let i = 0; i < n; i++)
        this.d.guest.writeU8(this.base + F.req.offset + ((prod + i) & (RING - 1)), bytes[off + i]!);
      this.setU32(F.req_prod, prod + n);
      off += n;
      if (n > 0) this.notify();
      if (off < bytes.length) {
        assert.ok(Date.now() < end, "room in req");
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }
  async send(type: number, payload: string): Promise<number> {
    const p = enc.encode(payload);
    const h = new DataView(new ArrayBuffer(16));
    const id = this.reqId++;
    h.setUint32(0, type, true);
    h.setUint32(4, id, true);
    h.setUint32(12, p.length, true);
    const msg = new Uint8Array(16 + p.length);
    msg.set(new Uint8Array(h.buffer));
    msg.set(p, 16);
    await this.produce(msg);
    return id;
  }
  private drain(): void {
    const cons = this.u32(F.rsp_cons);
    const n = (this.u32(F.rsp_prod) - cons) >>> 0;
    for (let i = 0; i < n; i++)
      this.inbox.push(this.d.guest.readU8(this.base + F.rsp.offset + ((cons + i) & (RING - 1))));
    if (n > 0) {
      this.setU32(F.rsp_cons, cons + n);
      this.notify();
    }
  }
  /** Waits for the reply to `id`: [type, payload as strings or raw text]. */
  async reply(id: number, ms = 3000): Promise<{ type: number; text: string; strings: string[] }> {
    const end = Date.now() + ms;
    for (;;) {
      this.drain();
      while (this.inbox.length >= 16) {
        const b = Uint8Array.from(this.inbox.slice(0, 16));
        const dv = new DataView(b.buffer);
        const len = dv.getUint32(12, true);
        if (this.inbox.length < 16 + len) break;
        const payload = Uint8Array.from(this.inbox.slice(16, 16 + len));
        this.inbox.splice(0, 16 + len);
        if (dv.getUint32(4, true) === id && dv.getUint32(0, true) !== XS_TYPES.WATCH_EVENT)
          return {
            type: dv.getUint32(0, true),
            text: Buffer.from(payload).toString("latin1"),
            strings: splitPayload(payload).strings,
          };
      }
      if (Date.now() > end) throw new Error(`no reply to request ${id}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  async call(type: number, payload: string): Promise<{ type: number; text: string; strings: string[] }> {
    return this.reply(await this.send(type, payload));
  }
}

describe("XenStore domain serving guest rings", () => {
  let hv: Hypervisor;
  let link: XenstoreLink;
  const logs: string[] = [];
  const guests: RingGuest[] = [];

  before(async () => {
    const memory = new MachineMemory({ bytes: 64 << 20 });
    hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
    link = await XenstoreLink.start(hv, { log: (l) => logs.push(l) });
    for (const name of ["alice", "bob", "mallory", "oscar"]) {
      const d = hv.domains.create({ name, maxVcpus: 1, maxPages: 16, p2mPoolPages: p2mPoolPagesFor(16) });
      if (typeof d === "number") throw new Error(`create ${d}`);
      await link.introduce(d, name);
      guests.push(new RingGuest(hv, d));
    }
  });
  after(async () => {
    await link.close();
  });

  it("the builder seeded the page, gref 1 and the port; the XenStore domain may ask getdomaininfo", () => {
    const [a] = guests;
    assert.equal(a!.base / 4096, GUEST_XENSTORE_GFN);
    const e = a!.d.grantTable;
    assert.ok(e.isValidRef(GNTTAB_RESERVED_XENSTORE));
    assert.ok(a!.port > 0);
    const info = hv.hypercalls.domctlGetDomainInfo(link.domid, a!.d.domid);
    assert.notEqual(typeof info, "number", "getdomaininfo allowed for the XenStore domain");
    assert.ok((hv.hypercalls.domctlGetDomainInfo(a!.d.domid, 0) as number) < 0, "and refused to a guest");
  });

  it("a guest reads its home, writes its data directory, lists and removes, over its ring", async () => {
    const a = guests[0]!;
    const id = a.d.domid;
    assert.deepEqual(await a.call(XS_TYPES.READ, "name\0"), { type: XS_TYPES.READ, text: "alice", strings: [] });
    assert.equal((await a.call(XS_TYPES.GET_DOMAIN_PATH, `${id}\0`)).strings[0], `/local/domain/${id}`);
    assert.equal((await a.call(XS_TYPES.WRITE, "data/k\0v1")).type, XS_TYPES.WRITE);
    assert.equal((await a.call(XS_TYPES.READ, `/local/domain/${id}/data/k\0`)).text, "v1");
    assert.deepEqual((await a.call(XS_TYPES.DIRECTORY, "data\0")).strings, ["k"]);
    assert.equal((await a.call(XS_TYPES.RM, "data/k\0")).type, XS_TYPES.RM);
    assert.deepEqual((await a.call(XS_TYPES.DIRECTORY, "data\0")).strings, []);
  });

  it("permission and quota denials reach an unprivileged guest as XS_ERROR", async () => {
    const b = guests[1]!;
    const other = guests[0]!.d.domid;
    const deny = async (type: number, payload: string) => {
      const r = await b.call(type, payload);
      assert.equal(r.type, XS_TYPES.ERROR);
      return r.strings[0];
    };
    assert.equal(await deny(XS_TYPES.READ, `/local/domain/${other}/name\0`), "EACCES");
    assert.equal(await deny(XS_TYPES.WRITE, "name\0forged"), "EACCES");
    assert.equal(await deny(XS_TYPES.INTRODUCE, "9\x001\x001\x00"), "EACCES");
    assert.equal(await deny(XS_TYPES.WRITE, `data/big\0${"x".repeat(2049)}`), "ENOSPC");
    // Transactions: the quota is 10 open ones, checked with '>', so the 12th is refused.
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await b.call(XS_TYPES.TRANSACTION_START, "\0");
      codes.push(r.type === XS_TYPES.ERROR ? r.strings[0]! : "ok");
    }
    assert.deepEqual(codes.slice(-2), ["ok", "ENOSPC"]);
  });

  it("a hostile ring (bad index) is dropped with error 2 and other guests carry on", async () => {
    const m = guests[2]!;
    m.setU32(F.req_prod, m.u32(F.req_cons) + RING + 5);
    m.notify();
    const end = Date.now() + 3000;
    while (m.u32(F.error) === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(m.u32(F.error), layout.XENSTORE_ERROR_RINGIDX);
    while (!logs.some((l) => /ring closed/.test(l)) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.ok(
      logs.some((l) => /ring closed/.test(l)),
      logs.join("\n"),
    );
    assert.equal((await guests[0]!.call(XS_TYPES.READ, "name\0")).text, "alice");
  });

  it("an oversize payload length is a protocol error: error 3, the ring is dropped, nothing else", async () => {
    const o = guests[3]!;
    // A well-formed request first: it is answered before the bad header is seen.
    assert.equal((await o.call(XS_TYPES.READ, "name\0")).text, "oscar");
    const h = new Uint8Array(16);
    new DataView(h.buffer).setUint32(0, XS_TYPES.WRITE, true);
    new DataView(h.buffer).setUint32(12, 0xffff_ff00, true);
    await o.produce(h);
    const end = Date.now() + 3000;
    while (o.u32(F.error) === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(o.u32(F.error), layout.XENSTORE_ERROR_PROTO);
    while (!logs.some((l) => /XS_PAYLOAD_TOO_LARGE/.test(l)) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 5));
    assert.ok(
      logs.some((l) => /domain \d+: ring closed: XS_PAYLOAD_TOO_LARGE/.test(l)),
      logs.join("\n"),
    );
    // The daemon still knows the domain (its ring is gone, not the domain) and serves others.
    assert.equal((await link.xs.ok(XS_TYPES.IS_DOMAIN_INTRODUCED, `${o.d.domid}\0`)).payload[0], 0x54);
    assert.equal((await guests[0]!.call(XS_TYPES.READ, "name\0")).text, "alice");
  });

  it("a domain with no frame to spare for the page is introduced without a ring", async () => {
    const d = hv.domains.create({ name: "tight", maxVcpus: 1, maxPages: 0, p2mPoolPages: p2mPoolPagesFor(0) });
    if (typeof d === "number") throw new Error(`create ${d}`);
    await link.introduce(d, "tight");
    assert.equal(d.hvmParams[HvmParam.STORE_PFN], 0, "no page: the guest's client sees no XenStore");
    assert.ok(
      logs.some((l) => /tight: no XenStore ring/.test(l)),
      logs.join("\n"),
    );
    assert.equal((await link.xs.ok(XS_TYPES.READ, `/local/domain/${d.domid}/name\0`)).payload.length, 5);
  });

  it("a destroyed domain is released by xenstored itself on VIRQ_DOM_EXC", async () => {
    const b = guests[1]!;
    const id = b.d.domid;
    const introduced = async () => (await link.xs.ok(XS_TYPES.IS_DOMAIN_INTRODUCED, `${id}\0`)).payload[0];
    assert.equal(await introduced(), 0x54); // 'T'
    assert.equal(hv.domains.shutdown(id, 0), 0);
    assert.equal(hv.domains.destroy(id), 0);
    const end = Date.now() + 3000;
    while ((await introduced()) !== 0x46 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await introduced(), 0x46); // 'F'
    const gone = await link.xs.request(XS_TYPES.READ, `/local/domain/${id}/name\0`);
    assert.equal(gone.error, "ENOENT");
  });
});
