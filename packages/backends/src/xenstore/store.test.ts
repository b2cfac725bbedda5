import assert from "node:assert/strict";
import { test } from "node:test";
import { TestClient } from "./testkit.js";
import { Xenstored } from "./xenstored.js";

test("initial tree: /, /local, /local/domain, /tool, /tool/xenstored, all n0", () => {
  const c = new TestClient(new Xenstored(), 0);
  assert.deepEqual(c.ok("DIRECTORY", ["/"]), ["local", "tool"]);
  assert.deepEqual(c.ok("DIRECTORY", ["/local"]), ["domain"]);
  assert.deepEqual(c.ok("DIRECTORY", ["/tool"]), ["xenstored"]);
  for (const p of ["/", "/local", "/local/domain", "/tool", "/tool/xenstored"]) assert.deepEqual(c.perms(p), ["n0"]);
});

test("WRITE creates missing parents with empty values; READ returns raw bytes", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.write("/a/b/c", "hello");
  assert.equal(c.read("/a/b/c"), "hello");
  assert.equal(c.read("/a/b"), "");
  assert.equal(c.read("/a"), "");
  c.write("/a/b/c", "bytes\0with\0nul");
  assert.equal(c.read("/a/b/c"), "bytes\0with\0nul");
  c.write("/a/empty", "");
  assert.equal(c.read("/a/empty"), "");
});

test("DIRECTORY lists children in creation order; missing node is ENOENT", () => {
  const c = new TestClient(new Xenstored(), 0);
  for (const n of ["z", "a", "m"]) c.write(`/d/${n}`, n);
  assert.deepEqual(c.ok("DIRECTORY", ["/d"]), ["z", "a", "m"]);
  assert.deepEqual(c.ok("DIRECTORY", ["/d/z"]), []);
  assert.equal(c.err("DIRECTORY", ["/nope"]), "ENOENT");
  assert.equal(c.err("READ", ["/nope/deeper"]), "ENOENT");
});

test("MKDIR creates, and leaves an existing node alone", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.ok("MKDIR", ["/m/n"]);
  assert.equal(c.read("/m/n"), "");
  c.write("/m/n", "keep");
  c.ok("MKDIR", ["/m/n"]);
  assert.equal(c.read("/m/n"), "keep");
});

test("RM removes the subtree; missing node under an existing parent is OK; missing parent is ENOENT; / is EINVAL", () => {
  const c = new TestClient(new Xenstored(), 0);
  c.write("/r/a/b", "1");
  c.write("/r/c", "2");
  c.ok("RM", ["/r/a"]);
  assert.equal(c.err("READ", ["/r/a/b"]), "ENOENT");
  assert.deepEqual(c.ok("DIRECTORY", ["/r"]), ["c"]);
  c.ok("RM", ["/r/never"]);
  assert.equal(c.err("RM", ["/nothere/x"]), "ENOENT");
  assert.equal(c.err("RM", ["/"]), "EINVAL");
});

test("DIRECTORY answers E2BIG for a long list; DIRECTORY_PART pages through it and marks the end", () => {
  const c = new TestClient(new Xenstored(), 0);
  const names = Array.from({ length: 200 }, (_, i) => `child-with-a-rather-long-name-${i}`);
  for (const n of names) c.ok("MKDIR", [`/big/${n}`]);
  assert.equal(c.err("DIRECTORY", ["/big"]), "E2BIG");
  const got: string[] = [];
  let off = 0;
  let gen: string | undefined;
  let parts = 0;
  for (;;) {
    const r = c.raw("DIRECTORY_PART", ["/big", String(off)]);
    assert.equal(r.error, undefined);
    assert.ok(r.payload.length <= 4096);
    const text = Buffer.from(r.payload).toString("latin1");
    const [g, ...rest] = text.split("\0");
    gen ??= g;
    assert.equal(g, gen, "generation is stable while the node does not change");
    parts++;
    // rest ends with "" (the final NUL); an extra "" before it marks the end of the list.
    const done = text.endsWith("\0\0");
    const items = rest.slice(0, done ? -2 : -1);
    got.push(...items);
    off += items.reduce((n, s) => n + s.length + 1, 0);
    if (done) break;
  }
  assert.ok(parts > 1);
  assert.deepEqual(got, names);
  // Offset past the end: just the generation and the end marker.
  const end = c.raw("DIRECTORY_PART", ["/big", "999999"]);
  assert.equal(Buffer.from(end.payload).toString("latin1"), `${gen}\0\0`);
});

test("GET_DOMAIN_PATH", () => {
  const c = new TestClient(new Xenstored(), 0);
  assert.deepEqual(c.ok("GET_DOMAIN_PATH", ["7"]), ["/local/domain/7"]);
  assert.equal(c.err("GET_DOMAIN_PATH", ["seven"]), "EINVAL");
});
