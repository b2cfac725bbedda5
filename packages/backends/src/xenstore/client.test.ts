import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { XsClient, type XsClientLink, XsConnectionError } from "./client.js";
import type { XsTransport } from "./domain_conn.js";
import { MessagePortTransport, messagePortLink } from "./port_link.js";
import { TestClient } from "./testkit.js";
import { XsError } from "./wire.js";
import { Xenstored } from "./xenstored.js";

/** A link the test drives by hand: what the client sent, and bytes pushed in as the daemon's. */
function handLink() {
  const sent: Uint8Array[] = [];
  let rx: (b: Uint8Array) => void = () => {};
  let onClose: (r: string) => void = () => {};
  let closed = false;
  const link: XsClientLink = {
    send: (b) => sent.push(b),
    onReceive: (fn) => {
      rx = fn;
    },
    onClose: (fn) => {
      onClose = fn;
    },
    close: () => {
      closed = true;
    },
  };
  return {
    client: new XsClient(link),
    sent,
    push: (b: Uint8Array) => rx(b),
    drop: (r: string) => onClose(r),
    get closed() {
      return closed;
    },
  };
}

/** Settles a promise into a comparable record without awaiting forever. */
async function outcome(p: Promise<unknown>): Promise<string> {
  const pending = Symbol("pending");
  const r = await Promise.race([
    p.then(
      (v) => `ok:${v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : String(v)}`,
      (e: Error) => `${e.name}:${(e as XsError).code ?? e.message}`,
    ),
    new Promise<typeof pending>((resolve) => setImmediate(() => resolve(pending))),
  ]);
  return r === pending ? "pending" : r;
}

// READ "/a" as req 1: type 2, req_id 1, tx_id 0, len 3, "/a\0".
const READ_A_REQ = Uint8Array.from([
  0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x2f, 0x61, 0x00,
]);
// Its reply: type 2, req_id 1, tx_id 0, len 2, "hi".
const READ_A_REPLY = Uint8Array.from([
  0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x68, 0x69,
]);
// A watch event: type 15, req_id 0, len 5, "/w\0t\0".
const EVENT_W = Uint8Array.from([
  0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x2f, 0x77, 0x00,
  0x74, 0x00,
]);
// XS_ERROR for req 1: type 16, len 7, "ENOENT\0".
const ENOENT_REPLY = Uint8Array.from([
  0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x45, 0x4e, 0x4f,
  0x45, 0x4e, 0x54, 0x00,
]);

test("client: a request is the literal xsd_sockmsg bytes; its reply resolves at every split point", async () => {
  for (let i = 0; i <= READ_A_REPLY.length; i++) {
    const h = handLink();
    const p = h.client.read("/a");
    assert.deepEqual(h.sent, [READ_A_REQ]);
    h.push(READ_A_REPLY.subarray(0, i));
    if (i < READ_A_REPLY.length) assert.equal(await outcome(p), "pending", `prefix ${i}`);
    h.push(READ_A_REPLY.subarray(i));
    assert.equal(await outcome(p), "ok:hi", `split at ${i}`);
  }
});

test("client: a watch event arriving inside a split reply reaches its handler; req_id 0 is never a reply", async () => {
  const stream = Uint8Array.from([...EVENT_W, ...READ_A_REPLY]);
  for (let i = 0; i <= stream.length; i++) {
    const h = handLink();
    const events: string[] = [];
    const w = h.client.watch("/w", "t", (path, token) => events.push(`${path}|${token}`));
    // The WATCH itself is req 1: answer it, then the read is req 2.
    h.push(Uint8Array.from([4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x4f, 0x4b, 0]));
    assert.equal(await outcome(w), "ok:undefined");
    const p = h.client.read("/a");
    const reply = Uint8Array.from(stream);
    reply[EVENT_W.length + 4] = 2; // req_id 2
    h.push(reply.subarray(0, i));
    h.push(reply.subarray(i));
    assert.deepEqual(events, ["/w|t"], `split at ${i}`);
    assert.equal(await outcome(p), "ok:hi");
  }
});

test("client: every truncated reply prefix then a closed link rejects the request, never resolves it", async () => {
  for (let i = 0; i < READ_A_REPLY.length; i++) {
    const h = handLink();
    const p = h.client.read("/a");
    h.push(READ_A_REPLY.subarray(0, i));
    h.drop("gone");
    assert.equal(await outcome(p), "XsConnectionError:xenstore connection: READ /a: gone", `prefix ${i}`);
    assert.equal(await outcome(h.client.read("/a")), "XsConnectionError:xenstore connection: gone");
  }
});

test("client: XS_ERROR becomes XsError with the daemon's name; tryRead maps ENOENT to null", async () => {
  const h = handLink();
  const p = h.client.read("/a");
  h.push(ENOENT_REPLY);
  await assert.rejects(p, (e: unknown) => e instanceof XsError && e.code === "ENOENT" && /READ \/a/.test(e.message));
  const q = h.client.tryRead("/a");
  const again = Uint8Array.from(ENOENT_REPLY);
  again[4] = 2;
  h.push(again);
  assert.equal(await q, null);
});

test("client: replies are matched by req_id, in whatever order they come", async () => {
  const h = handLink();
  const a = h.client.read("/a");
  const b = h.client.read("/b");
  const second = Uint8Array.from(READ_A_REPLY);
  second[4] = 2;
  second[16] = 0x79; // "yi"
  h.push(Uint8Array.from([...second, ...READ_A_REPLY]));
  assert.equal(await outcome(a), "ok:hi");
  assert.equal(await outcome(b), "ok:yi");
});

test("client: a reply to no request, or an oversize header, breaks the connection and rejects what waits", async () => {
  const h = handLink();
  const p = h.client.read("/a");
  const stray = Uint8Array.from(READ_A_REPLY);
  stray[4] = 9;
  h.push(stray);
  assert.match(await outcome(p), /XsConnectionError:.*reply to unknown request 9/);
  assert.ok(h.closed);
  const h2 = handLink();
  const q = h2.client.read("/a");
  h2.push(Uint8Array.from([2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x10, 0, 0])); // len 4097
  assert.match(await outcome(q), /XsConnectionError:.*XS_PAYLOAD_TOO_LARGE/);
  assert.ok(h2.closed);
});

test("client: a payload over 4096 bytes is refused with E2BIG before anything is sent", async () => {
  const h = handLink();
  await assert.rejects(
    h.client.write("/a", "x".repeat(4096)),
    (e: unknown) => e instanceof XsError && e.code === "E2BIG",
  );
  assert.equal(h.sent.length, 0);
});

/** A client on `daemon` as domain `domid`'s own connection, all in this thread. */
function loopback(daemon: Xenstored, domid: number): XsClient {
  let rx: (b: Uint8Array) => void = () => {};
  const transport: XsTransport = {
    deliver: (m) => {
      // Replies come back on a later turn, as over any real link.
      queueMicrotask(() => rx(m));
      return true;
    },
    close: () => {},
  };
  const port = daemon.connectDomain(domid, transport);
  return new XsClient({
    send: (b) => port.receive(b),
    onReceive: (fn) => {
      rx = fn;
    },
    onClose: () => {},
    close: () => port.closed(),
  });
}

test("client against the daemon: permissions hold for the connection's domid; watches fire", async () => {
  const daemon = new Xenstored();
  const dom0 = new TestClient(daemon, 0);
  // As libxl lays a device out: each directory owned by its domain, readable by the peer.
  dom0.ok("MKDIR", ["/local/domain/5/backend"]);
  dom0.ok("SET_PERMS", ["/local/domain/5/backend", "n5", "r7"]);
  dom0.write("/local/domain/5/backend/x", "1");
  dom0.ok("MKDIR", ["/local/domain/7/device"]);
  dom0.ok("SET_PERMS", ["/local/domain/7/device", "n7", "r5"]);
  dom0.write("/local/domain/7/device/x", "1");
  const c = loopback(daemon, 5);
  await c.write("backend/x/state", "4"); // relative to its home
  assert.equal(dom0.read("/local/domain/5/backend/x/state"), "4");
  assert.equal(await c.read("/local/domain/7/device/x"), "1");
  await assert.rejects(
    c.write("/local/domain/7/device/x", "2"),
    (e: unknown) => e instanceof XsError && e.code === "EACCES",
  );
  assert.deepEqual(await c.getPerms("/local/domain/5/backend/x/state"), ["n5", "r7"]);
  const seen: string[] = [];
  await c.watch("/local/domain/7/device", "fe", (p) => seen.push(p));
  dom0.write("/local/domain/7/device/x/state", "3");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ["/local/domain/7/device", "/local/domain/7/device/x/state"]);
});

test("client transaction: a conflicting write makes the commit EAGAIN and the body runs again", async () => {
  const daemon = new Xenstored();
  const dom0 = new TestClient(daemon, 0);
  dom0.write("/n", "0");
  const c = loopback(daemon, 0);
  let runs = 0;
  await c.transaction(async (tx) => {
    const v = Number(await c.read("/n", tx));
    if (runs++ === 0) dom0.write("/n", "10"); // someone else changes it meanwhile
    await c.write("/n", String(v + 1), tx);
  });
  assert.equal(runs, 2);
  assert.equal(dom0.read("/n"), "11");
});

test("over a MessagePort: the daemon serves the port as the bound domid; non-bytes drop it; close forgets it", async () => {
  const daemon = new Xenstored();
  const dom0 = new TestClient(daemon, 0);
  dom0.write("/local/domain/9/x", "1");
  dom0.ok("SET_PERMS", ["/local/domain/9/x", "n9"]);
  const before = daemon.connectionCount;
  const { port1, port2 } = new MessageChannel();
  new MessagePortTransport((t) => daemon.connectDomain(9, t), port1);
  const c = new XsClient(messagePortLink(port2));
  await c.write("x/y", "z");
  assert.deepEqual(dom0.perms("/local/domain/9/x/y"), ["n9"]);
  await assert.rejects(c.write("/local/domain/0/x", "1"), (e: unknown) => e instanceof XsError && e.code === "EACCES");
  assert.equal(daemon.connectionCount, before + 1);
  c.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(daemon.connectionCount, before);
  // A peer that sends something other than bytes loses its connection.
  const ch = new MessageChannel();
  new MessagePortTransport((t) => daemon.connectDomain(9, t), ch.port1);
  ch.port2.on("message", () => {}); // a started port hears its peer close
  const closed = new Promise<void>((resolve) => ch.port2.once("close", () => resolve()));
  ch.port2.postMessage({ not: "bytes" });
  await closed;
  assert.equal(daemon.connectionCount, before);
  assert.ok(c.closed !== null);
  assert.ok(new XsConnectionError("x") instanceof Error);
});
