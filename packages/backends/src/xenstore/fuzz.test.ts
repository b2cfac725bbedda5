// Hostile clients: random requests and random bytes must never crash the daemon, every framed
// request gets exactly one reply, and the tree stays consistent.
import assert from "node:assert/strict";
import { test } from "node:test";
import { InProcessConnection } from "./domain_conn.js";
import { XS_STREAM_ERRORS } from "./parser.js";
import { ownerOf } from "./permissions.js";
import { childPath } from "./store.js";
import { encodeMessage, textBytes, XS_ERRORS, XS_TYPES } from "./wire.js";
import { Xenstored } from "./xenstored.js";

/** xorshift32: reproducible without a dependency. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const PIECES = ["/", "a", "b", "local", "domain", "1", "2", "0", "@introduceDomain", "@releaseDomain", "T", "F"];
const PIECES2 = ["r1", "n2", "b0", "w1", "print", "..", "-", "_", "x".repeat(50), " ", "\0", "\0", "\0"];

function randomPayload(r: (n: number) => number): Uint8Array {
  let s = "";
  const parts = r(8);
  for (let i = 0; i < parts; i++) s += r(2) ? PIECES[r(PIECES.length)] : PIECES2[r(PIECES2.length)];
  return textBytes(s);
}

function checkTree(d: Xenstored): void {
  const owned = new Map<number, number>();
  for (const p of d.store.paths()) {
    const n = d.store.get(p)!;
    owned.set(ownerOf(n.acl), (owned.get(ownerOf(n.acl)) ?? 0) + 1);
    for (const c of n.children) assert.ok(d.store.get(childPath(p, c)), `${p} lists missing child ${c}`);
    if (p !== "/") {
      const parent = p.slice(0, p.lastIndexOf("/")) || "/";
      assert.ok(d.store.get(parent)?.children.includes(p.slice(p.lastIndexOf("/") + 1)), `${p} not in its parent`);
    }
  }
  for (const [domid, n] of owned) assert.equal(d.store.owned(domid), n, `owned count of ${domid}`);
}

test("random framed requests: one reply each, known error names, consistent tree", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    const d = new Xenstored({ quotas: { nodes: 30 } });
    const dom0 = new InProcessConnection(d, { domid: 0, privileged: true });
    dom0.request(XS_TYPES.INTRODUCE, textBytes("1\x000\x001\0"));
    dom0.request(XS_TYPES.SET_PERMS, textBytes("/local/domain/1\0n1\0"));
    const connectGuest = () =>
      new InProcessConnection({ connect: (t) => d.connectDomain(1, t) }, { domid: 1, privileged: false });
    let guest = connectGuest();
    const types = [...Object.values(XS_TYPES), 20, 23, 99, 0xffff];
    for (let i = 0; i < 3000; i++) {
      const c = r(4) === 0 ? dom0 : guest;
      const type = types[r(types.length)]!;
      const txId = r(3) === 0 ? r(4) : 0;
      const reqId = c.send(type, randomPayload(r), txId);
      const reply = c.takeReply(reqId);
      if (c === guest && guest.closedReason !== undefined) {
        // dom0 released domain 1 (a random RELEASE): the guest's connection is gone; start a new one.
        guest = connectGuest();
        continue;
      }
      assert.ok(reply, `seed ${seed} step ${i}: no reply to type ${type}`);
      if (reply.type === XS_TYPES.ERROR) assert.ok((XS_ERRORS as readonly string[]).includes(reply.error ?? ""));
      else assert.equal(reply.type, type);
      c.takeEvents();
    }
    checkTree(d);
  }
});

test("random bytes: the daemon answers or drops the connection with a stable code, never throws", () => {
  for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
    const r = rng(seed);
    const d = new Xenstored();
    const c = new InProcessConnection(d, { domid: 0, privileged: true });
    for (let i = 0; i < 200 && c.closedReason === undefined; i++) {
      // Mostly small headers so that some frames complete; sometimes huge lengths.
      const bytes = new Uint8Array(1 + r(40));
      for (let j = 0; j < bytes.length; j++) bytes[j] = r(4) === 0 ? r(256) : r(3);
      c.sendRaw(bytes);
    }
    if (c.closedReason !== undefined) assert.match(c.closedReason, new RegExp(XS_STREAM_ERRORS.payloadTooLarge));
    checkTree(d);
  }
  // A well-formed request after garbage on another connection still works.
  const d = new Xenstored();
  new InProcessConnection(d, { domid: 0, privileged: true }).sendRaw(encodeMessage(2, 1, 0, new Uint8Array(5000)));
  const ok = new InProcessConnection(d, { domid: 0, privileged: true });
  assert.equal(ok.request(XS_TYPES.READ, textBytes("/\0")).error, undefined);
});
