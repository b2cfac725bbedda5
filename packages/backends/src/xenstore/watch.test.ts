import assert from "node:assert/strict";
import { test } from "node:test";
import { TestClient } from "./testkit.js";
import { Xenstored } from "./xenstored.js";

test("a watch fires once on registration, then for changes at or below its path only", () => {
  const d = new Xenstored();
  const w = new TestClient(d, 0);
  const c = new TestClient(d, 0);
  w.ok("WATCH", ["/a", "tok"]);
  assert.deepEqual(w.events(), [["/a", "tok"]]);
  c.write("/a/b/c", "1");
  c.write("/ab", "sibling-prefix");
  c.write("/a", "self");
  c.ok("SET_PERMS", ["/a/b", "n0", "r1"]);
  assert.deepEqual(w.events(), [
    ["/a/b/c", "tok"],
    ["/a", "tok"],
    ["/a/b", "tok"],
  ]);
  c.ok("RM", ["/a/b"]);
  assert.deepEqual(w.events(), [["/a/b", "tok"]]);
});

test("removing an ancestor fires watches below it with their own path", () => {
  const d = new Xenstored();
  const w = new TestClient(d, 0);
  w.write("/p/q/r", "1");
  w.ok("WATCH", ["/p/q/r", "deep"]);
  w.events();
  w.ok("RM", ["/p"]);
  assert.deepEqual(w.events(), [["/p/q/r", "deep"]]);
});

test("relative watches report relative paths", () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["4", "0", "1"]);
  dom0.ok("SET_PERMS", ["/local/domain/4", "n4"]);
  const g = new TestClient(d, 4);
  g.ok("WATCH", ["device", "dev"]);
  assert.deepEqual(g.events(), [["device", "dev"]]);
  dom0.write("/local/domain/4/device/vbd/0/state", "1");
  assert.deepEqual(g.events(), [["device/vbd/0/state", "dev"]]);
  // UNWATCH matches the canonical path, relative or not.
  g.ok("UNWATCH", ["/local/domain/4/device", "dev"]);
  dom0.write("/local/domain/4/device/x", "1");
  assert.deepEqual(g.events(), []);
});

test("duplicate watch is EEXIST; unknown UNWATCH is ENOENT; RESET_WATCHES drops them", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.ok("WATCH", ["/w", "t"]);
  assert.equal(c.err("WATCH", ["/w", "t"]), "EEXIST");
  c.ok("WATCH", ["/w", "t2"]);
  assert.equal(c.err("UNWATCH", ["/w", "nope"]), "ENOENT");
  c.ok("RESET_WATCHES", [""]);
  c.events();
  c.write("/w", "1");
  assert.deepEqual(c.events(), []);
  assert.equal(c.err("WATCH", ["@notAThing", "t"]), "EINVAL");
});

test("no event for nodes the watcher cannot read", () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  const a = new TestClient(d, 1);
  a.ok("WATCH", ["/", "root"]);
  a.events();
  dom0.write("/private", "x");
  assert.deepEqual(a.events(), []);
  dom0.write("/public", "x");
  dom0.ok("SET_PERMS", ["/public", "n0", "r1"]);
  assert.deepEqual(a.events(), [["/public", "root"]]);
});

test("changes made in a transaction fire at commit only, and not at all on abort", () => {
  const d = new Xenstored();
  const w = new TestClient(d, 0);
  const c = new TestClient(d, 0);
  w.ok("WATCH", ["/tx", "t"]);
  w.events();
  const t = c.start();
  c.write("/tx/a", "1", t);
  assert.deepEqual(w.events(), []);
  c.ok("TRANSACTION_END", ["T"], t);
  assert.deepEqual(w.events(), [["/tx/a", "t"]]);
  const t2 = c.start();
  c.write("/tx/b", "1", t2);
  c.ok("TRANSACTION_END", ["F"], t2);
  assert.deepEqual(w.events(), []);
});

test("@introduceDomain and @releaseDomain fire for privileged watchers", () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  dom0.ok("WATCH", ["@introduceDomain", "in"]);
  dom0.ok("WATCH", ["@releaseDomain", "out"]);
  assert.deepEqual(dom0.events(), [
    ["@introduceDomain", "in"],
    ["@releaseDomain", "out"],
  ]);
  dom0.ok("INTRODUCE", ["5", "1234", "3"]);
  assert.deepEqual(
    dom0.events().filter(([p]) => p.startsWith("@")),
    [["@introduceDomain", "in"]],
  );
  dom0.ok("RELEASE", ["5"]);
  assert.deepEqual(
    dom0.events().filter(([p]) => p.startsWith("@")),
    [["@releaseDomain", "out"]],
  );
});

test("special watches reach an unprivileged domain only when granted by SET_PERMS on the special path", () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  const a = new TestClient(d, 1);
  a.ok("WATCH", ["@introduceDomain", "in"]);
  a.events();
  dom0.ok("INTRODUCE", ["2", "0", "1"]);
  assert.deepEqual(a.events(), []);
  dom0.ok("SET_PERMS", ["@introduceDomain", "n0", "r1"]);
  assert.deepEqual(dom0.perms("@introduceDomain"), ["n0", "r1"]);
  dom0.ok("INTRODUCE", ["3", "0", "1"]);
  assert.deepEqual(a.events(), [["@introduceDomain", "in"]]);
});

test("a watch event its client has not taken within the event lifetime is dropped; replies are kept", () => {
  let now = 0;
  const d = new Xenstored({ watchEventTimeoutMs: 20_000, now: () => now });
  const dom0 = new TestClient(d, 0);
  dom0.ok("INTRODUCE", ["1", "0", "1"]);
  dom0.ok("SET_PERMS", ["/local/domain/1", "n1"]);
  const a = new TestClient(d, 1);
  a.ok("WATCH", ["/local/domain/1/w", "t"]);
  a.events();
  a.conn.paused = true;
  dom0.write("/local/domain/1/w/old", "1");
  now = 15_000;
  dom0.write("/local/domain/1/w/new", "1");
  const id = a.conn.send(2, Buffer.from("w/new\0"));
  now = 25_000;
  a.conn.paused = false;
  assert.deepEqual(a.events(), [["/local/domain/1/w/new", "t"]]);
  assert.equal(a.conn.takeReply(id)?.error, undefined);
});

test("an unprivileged domain that does not read holds at most maxQueuedEvents events; others are unaffected", () => {
  const d = new Xenstored({ maxQueuedEvents: 5 });
  const dom0 = new TestClient(d, 0);
  for (const id of [1, 2]) {
    dom0.ok("INTRODUCE", [String(id), "0", "1"]);
    dom0.ok("SET_PERMS", [`/local/domain/${id}`, "n0", "r1", "r2"]);
  }
  const a = new TestClient(d, 1);
  const b = new TestClient(d, 2);
  for (const c of [a, b]) {
    c.ok("WATCH", ["/local/domain/1", "t"]);
    c.events();
  }
  a.conn.paused = true;
  for (let i = 0; i < 20; i++) dom0.write(`/local/domain/1/k${i}`, "v");
  assert.equal(b.events().length, 20);
  a.conn.paused = false;
  assert.deepEqual(
    a.events().map(([p]) => p),
    [0, 1, 2, 3, 4].map((i) => `/local/domain/1/k${i}`),
  );
});
