import assert from "node:assert/strict";
import { test } from "node:test";
import { InProcessConnection } from "./domain_conn.js";
import { DEFAULT_QUOTAS } from "./quota.js";
import { TestClient } from "./testkit.js";
import { nulStrings, XS_TYPES } from "./wire.js";
import { Xenstored, type XenstoredOptions } from "./xenstored.js";

/** dom0 plus domains 1 and 2, each owning its home. */
function setup(options: XenstoredOptions = {}) {
  const d = new Xenstored(options);
  const dom0 = new TestClient(d, 0);
  for (const id of [1, 2]) {
    dom0.ok("INTRODUCE", [String(id), "0", "1"]);
    dom0.ok("SET_PERMS", [`/local/domain/${id}`, `n${id}`]);
  }
  return { d, dom0, a: new TestClient(d, 1), b: new TestClient(d, 2) };
}

test("defaults are the 4.17 C daemon's", () => {
  assert.deepEqual(
    { ...DEFAULT_QUOTAS },
    {
      nodes: 1000,
      nodeSize: 2048,
      watches: 128,
      transactions: 10,
      perms: 5,
      transactionNodes: 1024,
      pathLength: 2048,
      outstanding: 20,
    },
  );
});

test("nodes per domain: ENOSPC for the domain over quota, not for the other one or dom0", () => {
  const { dom0, a, b } = setup({ quotas: { nodes: 4 } });
  // The home counts: it is owned by the domain after SET_PERMS.
  for (let i = 0; i < 3; i++) a.write(`n${i}`, "v");
  assert.equal(a.err("WRITE", ["n3", "v"]), "ENOSPC");
  assert.equal(a.err("MKDIR", ["x/y"]), "ENOSPC");
  b.write("m0", "v");
  // dom0 is never limited; its node inherits the owner of its parent, so it is charged to domain 1.
  dom0.write("/local/domain/1/by-dom0", "v");
  assert.deepEqual(dom0.perms("/local/domain/1/by-dom0"), ["n1"]);
  // Freeing lets the domain create again.
  a.ok("RM", ["n0"]);
  assert.equal(a.err("WRITE", ["n3", "v"]), "ENOSPC");
  a.ok("RM", ["by-dom0"]);
  a.write("n3", "v");
});

test("node size: ENOSPC above 2048 bytes for domains, dom0 unlimited", () => {
  const { dom0, a } = setup();
  a.write("ok", "x".repeat(2048));
  assert.equal(a.err("WRITE", ["big", "x".repeat(2049)]), "ENOSPC");
  dom0.write("/big", "x".repeat(3000));
  assert.equal(dom0.read("/big").length, 3000);
});

test("watches: E2BIG after the quota (one extra slips in, as the > check in 4.17 allows)", () => {
  const { a } = setup({ quotas: { watches: 3 } });
  for (let i = 0; i < 4; i++) a.ok("WATCH", [`w${i}`, "t"]);
  assert.equal(a.err("WATCH", ["w4", "t"]), "E2BIG");
});

test("permission entries: ENOSPC beyond 5 besides the owner", () => {
  const { a } = setup();
  a.write("p", "v");
  a.ok("SET_PERMS", ["p", "n1", "r2", "r3", "r4", "r5", "r6"]);
  assert.equal(a.err("SET_PERMS", ["p", "n1", "r2", "r3", "r4", "r5", "r6", "r7"]), "ENOSPC");
});

test("path length below the domain's home: EINVAL beyond the quota", () => {
  const { a, dom0 } = setup({ quotas: { pathLength: 10 } });
  a.write("0123456789", "v");
  assert.equal(a.err("WRITE", ["0123456789a", "v"]), "EINVAL");
  dom0.write(`/local/domain/1/${"x".repeat(100)}`, "v");
});

test("absolute paths longer than XENSTORE_ABS_PATH_MAX are EINVAL for everybody", () => {
  const { dom0 } = setup();
  const long = `/${"a".repeat(3072)}`;
  assert.equal(dom0.err("WRITE", [long, "v"]), "EINVAL");
});

test("outstanding requests: a domain that does not read stalls itself only", () => {
  const { a, b, dom0 } = setup();
  a.conn.paused = true;
  const ids: number[] = [];
  for (let i = 0; i < 25; i++) ids.push(a.conn.send(XS_TYPES.WRITE, nulStrings(`k${i}`)));
  // The daemon handled 20 and holds the rest unread; b is served meanwhile.
  b.write("free", "yes");
  assert.equal(b.read("free"), "yes");
  assert.equal(b.err("READ", ["/local/domain/1/k19"]), "EACCES");
  assert.equal(dom0.read("/local/domain/1/k19"), "");
  assert.equal(dom0.err("READ", ["/local/domain/1/k20"]), "ENOENT");
  a.conn.paused = false;
  for (const id of ids) assert.equal(a.conn.takeReply(id)?.error, undefined);
  assert.equal(a.read("k24"), "");
});

test("privileged connections are not limited by outstanding replies", () => {
  const { dom0 } = setup();
  dom0.conn.paused = true;
  const ids: number[] = [];
  for (let i = 0; i < 30; i++) ids.push(dom0.conn.send(XS_TYPES.MKDIR, nulStrings(`/o/${i}`)));
  dom0.conn.paused = false;
  for (const id of ids) assert.equal(dom0.conn.takeReply(id)?.error, undefined);
});

test("the watch quota counts all connections of a domain", () => {
  const d = new Xenstored({ quotas: { watches: 3 } });
  const c1 = new InProcessConnection(d, { domid: 7, privileged: false });
  const c2 = new InProcessConnection(d, { domid: 7, privileged: false });
  const w = (c: InProcessConnection, p: string) => c.request(XS_TYPES.WATCH, nulStrings(p, "t")).error;
  assert.equal(w(c1, "a"), undefined);
  assert.equal(w(c2, "b"), undefined);
  assert.equal(w(c1, "c"), undefined);
  assert.equal(w(c2, "d"), undefined);
  assert.equal(w(c1, "e"), "E2BIG");
  assert.equal(w(c2, "e"), "E2BIG");
});
