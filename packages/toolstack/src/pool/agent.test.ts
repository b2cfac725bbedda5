import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { connect, createServer, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { POOL_LINK_PATH, PoolAgent } from "./agent.js";
import { decodeLinkMsg, encodeLinkMsg, type LinkMsg, linkMac } from "./link_protocol.js";

/**
 * Pool membership with bare agents on loopback listeners (no machines): joins learn the members
 * and link to them all, a wrong secret is refused and logged on both sides, and the wire — a raw
 * TCP client doing the handshake one byte per write, every truncated prefix of its auth message
 * refused, a silent peer dropped by the heartbeat check.
 */
const SECRET = new TextEncoder().encode("0123456789abcdef0123");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(5);
  }
}

interface Node {
  agent: PoolAgent;
  logs: string[];
  wss: WebSocketServer;
  url: string;
}

const nodes: Node[] = [];

async function node(name: string, secret = SECRET, heartbeatMs = 1000, port = 0): Promise<Node> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const logs: string[] = [];
  const agent = new PoolAgent({
    name,
    url,
    secret,
    heartbeatMs,
    handshakeMs: 300,
    log: (l) => logs.push(l),
    ops: { echo: (_link, a) => ({ name, got: a.x ?? null }) },
  });
  wss.on("connection", (ws, req) => {
    if (req.url === POOL_LINK_PATH) agent.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`);
    else ws.close();
  });
  const n = { agent, logs, wss, url };
  nodes.push(n);
  return n;
}

after(async () => {
  for (const n of nodes) {
    n.agent.close();
    for (const c of n.wss.clients) c.terminate();
    await new Promise<void>((r) => n.wss.close(() => r()));
  }
});

/** A WebSocket client by hand on the pool path: raw bytes out, decoded link messages in. */
async function rawLink(url: string): Promise<{ sock: Socket; next: () => Promise<LinkMsg>; closed: () => boolean }> {
  const { hostname, port } = new URL(url);
  const sock = connect(Number(port), hostname);
  await new Promise<void>((r) => sock.once("connect", () => r()));
  let buf = Buffer.alloc(0);
  let closed = false;
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
  });
  sock.on("close", () => {
    closed = true;
  });
  sock.on("error", () => {});
  sock.write(
    `GET ${POOL_LINK_PATH} HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  await until(() => buf.includes("\r\n\r\n"));
  const head = buf.subarray(0, buf.indexOf("\r\n\r\n") + 4).toString();
  assert.match(head, /^HTTP\/1\.1 101/);
  buf = buf.subarray(head.length);
  /** The next binary server frame (unmasked; 7-bit or 16-bit lengths). */
  const next = async (): Promise<LinkMsg> => {
    for (;;) {
      if (buf.length >= 2) {
        const op = buf[0]! & 0x0f;
        let len = buf[1]! & 0x7f;
        let off = 2;
        if (len === 126 && buf.length >= 4) {
          len = buf.readUInt16BE(2);
          off = 4;
        }
        if (len !== 126 && buf.length >= off + len) {
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (op === 2) return decodeLinkMsg(payload);
          if (op === 8) throw new Error("closed by the host");
          continue;
        }
      }
      if (closed) throw new Error("connection closed");
      await sleep(2);
    }
  };
  return { sock, next, closed: () => closed };
}

/** A masked client frame (binary) of a payload under 64 KiB. */
function clientFrame(payload: Uint8Array): Uint8Array {
  const mask = [0x37, 0xfa, 0x21, 0x3d];
  const head =
    payload.length < 126
      ? [0x82, 0x80 | payload.length]
      : [0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff];
  const out = new Uint8Array(head.length + 4 + payload.length);
  out.set(head);
  out.set(mask, head.length);
  for (let i = 0; i < payload.length; i++) out[head.length + 4 + i] = payload[i]! ^ mask[i % 4]!;
  return out;
}

async function writeByteByByte(sock: Socket, bytes: Uint8Array): Promise<void> {
  for (const b of bytes) {
    sock.write(Uint8Array.of(b));
    await sleep(0);
  }
}

describe("pool membership", () => {
  it("a join learns the members and links to each; every member lists every other", async () => {
    const a = await node("a");
    const b = await node("b");
    const c = await node("c");
    await b.agent.join(a.url);
    await c.agent.join(b.url.replace("ws://", "")); // HOST:PORT works too
    const names = (n: Node) => n.agent.members().map((m) => `${m.host}${m.self ? "*" : ""}`);
    await until(() => a.agent.members().length === 3);
    assert.deepEqual(names(a), ["a*", "b", "c"]);
    assert.deepEqual(names(b), ["b*", "a", "c"]);
    assert.deepEqual(names(c), ["c*", "a", "b"]);
    assert.deepEqual(await c.agent.link("a").request("echo", { x: 7 }), { name: "a", got: 7 });
    assert.deepEqual(await a.agent.link(c.url).request("echo", {}), { name: "c", got: null });
    assert.ok(a.logs.some((l) => /host c \(ws:.*\) linked/.test(l)));
    // A name already in the pool is refused.
    const dup = await node("b");
    await assert.rejects(dup.agent.join(a.url), /already in the pool/);
    for (const n of [a, b, c]) n.agent.close();
  });

  it("--join waits for a member that is still starting", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const j = await node("late-joiner");
    const joining = j.agent.join(`127.0.0.1:${port}`);
    await sleep(600);
    const m = await node("late", SECRET, 1000, port);
    await joining;
    assert.deepEqual(
      j.agent.members().map((x) => x.host),
      ["late-joiner", "late"],
    );
    assert.ok(!j.logs.some((l) => /failed/.test(l)), "the early refusals are not logged");
    j.agent.close();
    m.agent.close();
  });

  it("a wrong secret is refused, and both sides log it; nothing is linked", async () => {
    const a = await node("a2");
    const x = await node("x", new TextEncoder().encode("not the pool secret at all"));
    await assert.rejects(x.agent.join(a.url), /refused by the host: authentication failed/);
    assert.ok(
      a.logs.some((l) => /refused a link from 127\.0\.0\.1:\d+: host 'x' failed to prove the pool secret/.test(l)),
    );
    assert.ok(x.logs.some((l) => /link to ws:.* failed: refused by the host: authentication failed/.test(l)));
    assert.equal(a.agent.members().length, 1);
    assert.equal(x.agent.members().length, 1);
    a.agent.close();
  });

  it("wire: the handshake and a request written one byte at a time; a silent peer is dropped as dead", async () => {
    const a = await node("a3", SECRET, 150);
    const { sock, next, closed } = await rawLink(a.url);
    const ch = await next();
    assert.equal(ch.t, "challenge");
    if (ch.t !== "challenge") return;
    assert.equal(ch.host, "a3");
    const nonce = new Uint8Array(32).fill(0x5a);
    const mac = linkMac(SECRET, "auth", ch.nonce, nonce, "raw");
    await writeByteByByte(
      sock,
      clientFrame(encodeLinkMsg({ t: "auth", host: "raw", url: "ws://127.0.0.1:1", nonce, mac })),
    );
    const w = await next();
    assert.equal(w.t, "welcome");
    if (w.t !== "welcome") return;
    assert.deepEqual(w.mac, linkMac(SECRET, "welcome", nonce, ch.nonce, "a3"), "the host proves the secret too");
    // {t:"req", id:1, op:"echo", args:{x:5}}
    await writeByteByByte(
      sock,
      clientFrame(hex("84 a1 74 a3 726571 a2 6964 01 a2 6f70 a4 6563686f a4 61726773 81 a1 78 05")),
    );
    let m = await next();
    while (m.t === "hb") m = await next();
    assert.deepEqual(m, { t: "res", id: 1, ok: true, result: { name: "a3", got: 5 } });
    // Now silent: after 4 heartbeat intervals the host drops it.
    await until(() => closed());
    assert.ok(
      a.logs.some((l) => /host raw \(ws:\/\/127\.0\.0\.1:1\) is dead: nothing heard for \d+ ms; dropped/.test(l)),
    );
    assert.equal(a.agent.members().length, 1);
    a.agent.close();
  });

  it("wire: every truncated prefix of an auth message, a wrong proof and silence are refused and logged", async () => {
    const a = await node("a4");
    const first = await rawLink(a.url);
    const ch = await first.next();
    if (ch.t !== "challenge") throw new Error("no challenge");
    const nonce = new Uint8Array(32).fill(1);
    const auth = encodeLinkMsg({
      t: "auth",
      host: "p",
      url: "ws://127.0.0.1:1",
      nonce,
      mac: linkMac(SECRET, "auth", ch.nonce, nonce, "p"),
    });
    first.sock.destroy();
    for (let n = 0; n < auth.length; n++) {
      const r = await rawLink(a.url);
      await r.next();
      r.sock.write(clientFrame(auth.subarray(0, n)));
      const m = await r.next();
      assert.deepEqual(m, { t: "refused", reason: "authentication failed" }, `prefix ${n}`);
      r.sock.destroy();
    }
    assert.equal(a.logs.filter((l) => /not a pool handshake/.test(l)).length, auth.length);
    // The whole message, but proven over another connection's nonce: a replay.
    const r = await rawLink(a.url);
    await r.next();
    r.sock.write(clientFrame(auth));
    assert.deepEqual(await r.next(), { t: "refused", reason: "authentication failed" });
    assert.ok(a.logs.some((l) => /host 'p' failed to prove the pool secret/.test(l)));
    // Saying nothing.
    const s = await rawLink(a.url);
    await s.next();
    assert.deepEqual(await s.next(), { t: "refused", reason: "authentication timed out" });
    assert.ok(a.logs.some((l) => /no authentication within 300 ms/.test(l)));
    assert.equal(a.agent.members().length, 1);
  });
});
