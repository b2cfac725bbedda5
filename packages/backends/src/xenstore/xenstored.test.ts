import assert from "node:assert/strict";
import { test } from "node:test";
import { TestClient } from "./testkit.js";
import { encodeMessage, nulStrings, textBytes, XS_TYPES } from "./wire.js";
import { Xenstored } from "./xenstored.js";

const dom0 = () => new TestClient(new Xenstored(), 0);

// One test per malformed-request rule, each with the error name the C daemon gives.
test("malformed: unknown or reply-only message types → EINVAL", () => {
  const c = dom0();
  for (const type of [20, 23, 24, 0xffff, XS_TYPES.WATCH_EVENT, XS_TYPES.ERROR]) {
    const r = c.conn.request(type, nulStrings("/"));
    assert.equal(r.error, "EINVAL", `type ${type}`);
    assert.equal(r.type, XS_TYPES.ERROR);
  }
});

test("malformed: path argument without its NUL → EINVAL", () => {
  const c = dom0();
  assert.equal(c.conn.request(XS_TYPES.READ, textBytes("/tool")).error, "EINVAL");
  assert.equal(c.conn.request(XS_TYPES.WRITE, textBytes("/no-nul-at-all")).error, "EINVAL");
});

test("malformed: too many strings for a one-argument request → EINVAL", () => {
  assert.equal(dom0().err("READ", ["/tool", "extra"]), "EINVAL");
});

test("malformed: bad path syntax → EINVAL", () => {
  const c = dom0();
  for (const p of ["", "/a b", "/a//b", "/a/", "/a\tb", "/a@b", "@foo", "/ä"])
    assert.equal(c.err("READ", [p]), "EINVAL", JSON.stringify(p));
});

test("malformed: TRANSACTION_START inside a transaction → EBUSY; unknown tx id → ENOENT", () => {
  const c = dom0();
  assert.equal(c.err("TRANSACTION_START", [""], 77), "EBUSY");
  assert.equal(c.err("READ", ["/"], 77), "ENOENT");
});

test("malformed: bad domid → EINVAL", () => {
  const c = dom0();
  for (const d of ["x", "-1", "32752", ""]) assert.equal(c.err("IS_DOMAIN_INTRODUCED", [d]), "EINVAL", d);
  assert.equal(c.err("INTRODUCE", ["1", "gfn", "1"]), "EINVAL");
  assert.equal(c.err("DIRECTORY_PART", ["/", "-1"]), "EINVAL");
});

test("errors echo req_id and tx_id; replies echo type", () => {
  const c = dom0();
  c.conn.sendRaw(encodeMessage(XS_TYPES.READ, 4242, 0, nulStrings("/missing")));
  const r = c.conn.takeReply(4242)!;
  assert.equal(r.type, XS_TYPES.ERROR);
  assert.equal(Buffer.from(r.payload).toString(), "ENOENT\0");
  const ok = c.raw("MKDIR", ["/m"]);
  assert.equal(ok.type, XS_TYPES.MKDIR);
  assert.equal(Buffer.from(ok.payload).toString(), "OK\0");
});

test("INTRODUCE creates the domain's home, IS_DOMAIN_INTRODUCED reports it, RELEASE removes it", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  assert.deepEqual(c.ok("IS_DOMAIN_INTRODUCED", ["0"]), ["T"]);
  assert.deepEqual(c.ok("IS_DOMAIN_INTRODUCED", ["5"]), ["F"]);
  c.ok("INTRODUCE", ["5", "-1", "3"]);
  c.ok("INTRODUCE", ["5", "-1", "3"]); // repeat with the same ring: fine
  assert.equal(c.err("INTRODUCE", ["5", "77", "3"]), "EINVAL");
  assert.deepEqual(c.ok("IS_DOMAIN_INTRODUCED", ["5"]), ["T"]);
  assert.deepEqual(c.perms("/local/domain/5"), ["n0", "r5"]);
  c.ok("RESUME", ["5"]);
  c.ok("RELEASE", ["5"]);
  assert.deepEqual(c.ok("IS_DOMAIN_INTRODUCED", ["5"]), ["F"]);
  assert.equal(c.err("READ", ["/local/domain/5"]), "ENOENT");
  assert.equal(c.err("RELEASE", ["5"]), "ENOENT");
  assert.equal(c.err("RELEASE", ["0"]), "EINVAL");
  assert.equal(c.err("RESUME", ["5"]), "ENOENT");
});

test("RELEASE closes the domain's connection, deletes its nodes and scrubs it from ACLs", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  c.ok("INTRODUCE", ["6", "0", "1"]);
  c.ok("MKDIR", ["/shared"]);
  c.ok("SET_PERMS", ["/shared", "n6"]);
  const g = new TestClient(d, 6);
  g.write("/shared/mine", "x");
  c.write("/other", "y");
  c.ok("SET_PERMS", ["/other", "n0", "r6", "r7"]);
  c.ok("RELEASE", ["6"]);
  assert.equal(g.conn.closedReason, "domain released");
  assert.equal(c.err("READ", ["/shared"]), "ENOENT");
  assert.deepEqual(c.perms("/other"), ["n0", "r7"]);
});

test("domain-control requests need privilege → EACCES", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  c.ok("INTRODUCE", ["1", "0", "1"]);
  const g = new TestClient(d, 1);
  for (const [type, args] of [
    ["INTRODUCE", ["2", "0", "1"]],
    ["RELEASE", ["1"]],
    ["IS_DOMAIN_INTRODUCED", ["1"]],
    ["RESUME", ["1"]],
    ["SET_TARGET", ["1", "0"]],
    ["CONTROL", ["print", "hi"]],
  ] as const)
    assert.equal(g.err(type, args), "EACCES", type);
  // GET_DOMAIN_PATH is for everybody.
  assert.deepEqual(g.ok("GET_DOMAIN_PATH", ["1"]), ["/local/domain/1"]);
});

test("CONTROL print/log go to the daemon log; unknown commands are EINVAL", () => {
  const lines: string[] = [];
  const c = new TestClient(new Xenstored({ log: (l) => lines.push(l) }), 0);
  c.ok("CONTROL", ["print", "hello", "world"]);
  c.ok("CONTROL", ["log", "x"]);
  assert.deepEqual(lines, ["xenstored: hello world", "xenstored: x"]);
  assert.equal(c.err("CONTROL", ["frobnicate"]), "EINVAL");
  assert.match(c.ok("CONTROL", ["quota"])[0]!, /nodes 1000/);
});

test("a domain-channel factory is told about INTRODUCE and RELEASE", () => {
  const calls: string[] = [];
  const d = new Xenstored({
    domainChannels: {
      introduce: (domid, gfn, evtchn) => calls.push(`in ${domid} ${gfn} ${evtchn}`),
      release: (domid) => calls.push(`out ${domid}`),
    },
  });
  const c = new TestClient(d, 0);
  c.ok("INTRODUCE", ["3", "4096", "9"]);
  c.ok("RELEASE", ["3"]);
  assert.deepEqual(calls, ["in 3 4096 9", "out 3"]);
});

test("relative paths resolve below /local/domain/<domid>", () => {
  const d = new Xenstored();
  const c = new TestClient(d, 0);
  c.write("name", "Domain-0");
  assert.equal(c.read("/local/domain/0/name"), "Domain-0");
  c.ok("INTRODUCE", ["2", "0", "1"]);
  c.write("/local/domain/2/name", "guest");
  assert.equal(new TestClient(d, 2).read("name"), "guest");
});

test("a closed connection's watches and transactions are forgotten", () => {
  const d = new Xenstored({ maxTransactionsTotal: 1 });
  const a = new TestClient(d, 0);
  a.ok("WATCH", ["/", "t"]);
  a.start();
  a.conn.disconnect();
  assert.equal(d.connectionCount, 0);
  const b = new TestClient(d, 0);
  b.start();
});
