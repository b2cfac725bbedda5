import assert from "node:assert/strict";
import { test } from "node:test";
import { TestClient } from "./testkit.js";
import { Xenstored } from "./xenstored.js";

test("writes inside a transaction are private until commit", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  const other = new TestClient(d, 0);
  const t = c.start();
  assert.ok(t > 0);
  c.write("/t/a", "1", t);
  assert.equal(c.read("/t/a", t), "1");
  assert.equal(other.err("READ", ["/t/a"]), "ENOENT");
  c.ok("TRANSACTION_END", ["T"], t);
  assert.equal(other.read("/t/a"), "1");
  // The id is dead after END.
  assert.equal(c.err("READ", ["/t/a"], t), "ENOENT");
  assert.equal(c.err("TRANSACTION_END", ["T"], t), "ENOENT");
});

test("abort discards", () => {
  const c = new TestClient(new Xenstored(), 0);
  const t = c.start();
  c.write("/gone", "x", t);
  c.ok("RM", ["/tool"], t);
  c.ok("TRANSACTION_END", ["F"], t);
  assert.equal(c.err("READ", ["/gone"]), "ENOENT");
  assert.equal(c.read("/tool"), "");
});

test("conflict: a node read in the transaction changed meanwhile → EAGAIN, nothing applied", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  const other = new TestClient(d, 0);
  c.write("/counter", "1");
  const t = c.start();
  const v = Number(c.read("/counter", t));
  c.write("/counter", String(v + 1), t);
  c.write("/side", "effect", t);
  other.write("/counter", "10");
  assert.equal(c.err("TRANSACTION_END", ["T"], t), "EAGAIN");
  assert.equal(other.read("/counter"), "10");
  assert.equal(other.err("READ", ["/side"]), "ENOENT");
  // Redo succeeds.
  const t2 = c.start();
  c.write("/counter", String(Number(c.read("/counter", t2)) + 1), t2);
  c.ok("TRANSACTION_END", ["T"], t2);
  assert.equal(other.read("/counter"), "11");
});

test("conflict on creation: two transactions creating the same node, the second gets EAGAIN", () => {
  const c = new TestClient(new Xenstored(), 0);
  const t1 = c.start();
  const t2 = c.start();
  assert.notEqual(t1, t2);
  c.write("/same", "a", t1);
  c.write("/same", "b", t2);
  c.ok("TRANSACTION_END", ["T"], t1);
  assert.equal(c.err("TRANSACTION_END", ["T"], t2), "EAGAIN");
  assert.equal(c.read("/same"), "a");
});

test("disjoint transactions both commit", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.write("/x/a", "0");
  c.write("/y/b", "0");
  const t1 = c.start();
  const t2 = c.start();
  c.write("/x/a", "1", t1);
  c.write("/y/b", "2", t2);
  c.ok("TRANSACTION_END", ["T"], t1);
  c.ok("TRANSACTION_END", ["T"], t2);
  assert.equal(c.read("/x/a"), "1");
  assert.equal(c.read("/y/b"), "2");
});

test("a transaction sees its own removals and directory changes", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.write("/d/a", "1");
  c.write("/d/b", "2");
  const t = c.start();
  c.ok("RM", ["/d/a"], t);
  c.write("/d/c", "3", t);
  assert.deepEqual(c.ok("DIRECTORY", ["/d"], t), ["b", "c"]);
  assert.deepEqual(c.ok("DIRECTORY", ["/d"]), ["a", "b"]);
  c.ok("TRANSACTION_END", ["T"], t);
  assert.deepEqual(c.ok("DIRECTORY", ["/d"]), ["b", "c"]);
});

test("per-connection limit (checked with > as 4.17 does) and the global limit give ENOSPC", () => {
  const d = new Xenstored({ maxTransactionsTotal: 14 });
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  const a = new TestClient(d, 1);
  for (let i = 0; i < 11; i++) a.start();
  assert.equal(a.err("TRANSACTION_START", [""]), "ENOSPC");
  for (let i = 0; i < 3; i++) dom0.start();
  assert.equal(dom0.err("TRANSACTION_START", [""]), "ENOSPC");
  a.ok("RESET_WATCHES", [""]);
  dom0.start();
});

test("nodes touched per transaction are limited for unprivileged domains", () => {
  const d = new Xenstored({ quotas: { transactionNodes: 2 } });
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  dom0.ok("SET_PERMS", ["/local/domain/1", "n1"]);
  const a = new TestClient(d, 1);
  const t = a.start();
  a.write("k1", "v", t); // touches k1 and its parent
  assert.equal(a.err("WRITE", ["k2", "v"], t), "ENOSPC");
});

test("nested START is EBUSY; bad END argument is EINVAL", () => {
  const c = new TestClient(new Xenstored(), 0);
  const t = c.start();
  assert.equal(c.err("TRANSACTION_START", [""], t), "EBUSY");
  assert.equal(c.err("TRANSACTION_END", ["X"], t), "EINVAL");
  c.ok("TRANSACTION_END", ["F"], t);
});

test("a removal refused by the touch quota leaves the transaction's view whole", () => {
  const d = new Xenstored({ quotas: { transactionNodes: 4 } });
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  dom0.ok("SET_PERMS", ["/local/domain/1", "n1"]);
  for (const k of ["a", "b", "c", "d"]) dom0.write(`/local/domain/1/t/${k}`, k);
  const a = new TestClient(d, 1);
  const t = a.start();
  assert.equal(a.err("RM", ["t"], t), "ENOSPC");
  a.ok("TRANSACTION_END", ["T"], t);
  assert.deepEqual(a.ok("DIRECTORY", ["t"]), ["a", "b", "c", "d"]);
});
