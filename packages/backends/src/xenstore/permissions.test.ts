import assert from "node:assert/strict";
import { test } from "node:test";
import { formatPerm, inheritAcl, parsePerm, rightsOf } from "./permissions.js";
import { TestClient } from "./testkit.js";
import { Xenstored } from "./xenstored.js";

test("perm strings round-trip; bad ones are EINVAL", () => {
  for (const s of ["n0", "r5", "w3", "b1", "b32751"]) assert.equal(formatPerm(parsePerm(s)), s);
  for (const s of ["x1", "r", "r-1", "rr1", "r32752", ""]) assert.throws(() => parsePerm(s), /EINVAL/);
});

test("rights: owner and privileged get everything, listed entries override the default", () => {
  const acl = [parsePerm("r1"), parsePerm("n2"), parsePerm("w3")];
  assert.equal(rightsOf({ domid: 1, privileged: false }, acl), 3);
  assert.equal(rightsOf({ domid: 0, privileged: true }, acl), 3);
  assert.equal(rightsOf({ domid: 2, privileged: false }, acl), 0);
  assert.equal(rightsOf({ domid: 3, privileged: false }, acl), 2);
  assert.equal(rightsOf({ domid: 4, privileged: false }, acl), 1);
  assert.equal(rightsOf({ domid: 4, privileged: false, target: 1 }, acl), 3);
  assert.deepEqual(inheritAcl({ domid: 5, privileged: false }, acl).map(formatPerm), ["r5", "n2", "w3"]);
  assert.deepEqual(inheritAcl({ domid: 0, privileged: true }, acl).map(formatPerm), ["r1", "n2", "w3"]);
});

/** dom0 plus two unprivileged domains with homes they can write in. */
function setup() {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  for (const id of [1, 2]) {
    dom0.ok("INTRODUCE", [String(id), "0", "1"]);
    dom0.ok("MKDIR", [`/local/domain/${id}/data`]);
    dom0.ok("SET_PERMS", [`/local/domain/${id}/data`, `n${id}`]);
  }
  return { d, dom0, a: new TestClient(d, 1), b: new TestClient(d, 2) };
}

test("a domain's new node is owned by it and inherits the rest of the parent's ACL", () => {
  const { dom0, a } = setup();
  a.write("data/x", "1");
  assert.deepEqual(a.perms("data/x"), ["n1"]);
  a.ok("SET_PERMS", ["data/x", "n1", "r2"]);
  a.write("data/x/y", "2");
  assert.deepEqual(a.perms("data/x/y"), ["n1", "r2"]);
  // A privileged creator does not take ownership: the copy is exact.
  dom0.write("/local/domain/1/data/x/z", "3");
  assert.deepEqual(dom0.perms("/local/domain/1/data/x/z"), ["n1", "r2"]);
});

test("EACCES on other domains' nodes; missing nodes under unreadable parents do not leak", () => {
  const { a, b } = setup();
  a.write("data/secret", "s");
  assert.equal(b.err("READ", ["/local/domain/1/data/secret"]), "EACCES");
  assert.equal(b.err("WRITE", ["/local/domain/1/data/secret", "x"]), "EACCES");
  assert.equal(b.err("READ", ["/local/domain/1/data/nope"]), "EACCES");
  assert.equal(a.err("READ", ["data/nope"]), "ENOENT");
  assert.equal(b.err("RM", ["/local/domain/1/data/secret"]), "EACCES");
  assert.equal(b.err("GET_PERMS", ["/local/domain/1/data/secret"]), "EACCES");
  // A domain's home is readable but not writable by it (dom0 owns it).
  assert.equal(a.read("/local/domain/1"), "");
  assert.equal(a.err("WRITE", ["/local/domain/1/name", "x"]), "EACCES");
  assert.equal(a.err("WRITE", ["/tool/mine", "x"]), "EACCES");
  assert.equal(a.err("READ", ["/tool"]), "EACCES");
});

test("granting read lets the other domain read but not write", () => {
  const { a, b } = setup();
  a.write("data/shared", "v");
  a.ok("SET_PERMS", ["data/shared", "n1", "r2"]);
  assert.equal(b.read("/local/domain/1/data/shared"), "v");
  assert.equal(b.err("WRITE", ["/local/domain/1/data/shared", "w"]), "EACCES");
  a.ok("SET_PERMS", ["data/shared", "n1", "b2"]);
  b.write("/local/domain/1/data/shared", "w");
  assert.equal(a.read("data/shared"), "w");
});

test("SET_PERMS: only the owner; an unprivileged owner may not give the node away; needs a perm", () => {
  const { dom0, a, b } = setup();
  a.write("data/n", "v");
  a.ok("SET_PERMS", ["data/n", "n1", "b2"]);
  assert.equal(b.err("SET_PERMS", ["/local/domain/1/data/n", "b2"]), "EACCES");
  assert.equal(a.err("SET_PERMS", ["data/n", "n2"]), "EPERM");
  assert.equal(a.err("SET_PERMS", ["data/n"]), "EINVAL");
  assert.equal(a.err("SET_PERMS", ["data/n", "q1"]), "EINVAL");
  dom0.ok("SET_PERMS", ["/local/domain/1/data/n", "n2"]);
  assert.deepEqual(b.perms("/local/domain/1/data/n"), ["n2"]);
});

test("SET_PERMS with a domainExists hook: absent domains are ignored, an absent owner is ENOENT", () => {
  const d = new Xenstored({ domainExists: (id) => id <= 2 });
  const dom0 = new TestClient(d, 0);
  dom0.write("/p", "v");
  assert.equal(dom0.err("SET_PERMS", ["/p", "n9"]), "ENOENT");
  dom0.ok("SET_PERMS", ["/p", "n0", "r9", "r1"]);
  assert.deepEqual(dom0.perms("/p"), ["n0", "r9", "r1"]);
});

test("SET_TARGET: a domain acts with its target's rights", () => {
  const { dom0, a, d } = setup();
  a.write("data/t", "mine");
  dom0.ok("INTRODUCE", ["3", "0", "1"]);
  const c = new TestClient(d, 3);
  assert.equal(c.err("READ", ["/local/domain/1/data/t"]), "EACCES");
  dom0.ok("SET_TARGET", ["3", "1"]);
  assert.equal(c.read("/local/domain/1/data/t"), "mine");
  assert.equal(a.err("SET_TARGET", ["1", "2"]), "EACCES");
  assert.equal(dom0.err("SET_TARGET", ["44", "1"]), "ENOENT");
});
