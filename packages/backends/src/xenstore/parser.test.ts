import assert from "node:assert/strict";
import { test } from "node:test";
import { InProcessConnection } from "./domain_conn.js";
import { XS_STREAM_ERRORS, XsParser, XsStreamError } from "./parser.js";
import { encodeMessage, nulStrings, XENSTORE_PAYLOAD_MAX, XS_TYPES } from "./wire.js";
import { Xenstored } from "./xenstored.js";

// Two messages written out byte by byte: READ "/a\0" (req 7) then WRITE "/b\0hi" (req 8, tx 3).
const READ_A = Uint8Array.from([
  0x02, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x2f, 0x61, 0x00,
]);
const WRITE_B = Uint8Array.from([
  0x0b, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x2f, 0x62, 0x00,
  0x68, 0x69,
]);
const STREAM = Uint8Array.from([...READ_A, ...WRITE_B]);

function summary(ms: { type: number; reqId: number; txId: number; payload: Uint8Array }[]): string[] {
  return ms.map((m) => `${m.type}/${m.reqId}/${m.txId}/${Buffer.from(m.payload).toString("latin1")}`);
}
const EXPECTED = ["2/7/0//a\0", "11/8/3//b\0hi"];

test("encodeMessage produces the literal header bytes", () => {
  assert.deepEqual(encodeMessage(XS_TYPES.READ, 7, 0, nulStrings("/a")), READ_A);
});

test("parser: every single split point of two messages gives the same two messages", () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const p = new XsParser();
    const got = [...p.feed(STREAM.subarray(0, i)), ...p.feed(STREAM.subarray(i))];
    assert.deepEqual(summary(got), EXPECTED, `split at ${i}`);
    assert.equal(p.state, "header");
    p.end();
  }
});

test("parser: every pair of split points, and one byte at a time", () => {
  for (let i = 0; i <= STREAM.length; i++)
    for (let j = i; j <= STREAM.length; j++) {
      const p = new XsParser();
      const got = [...p.feed(STREAM.subarray(0, i)), ...p.feed(STREAM.subarray(i, j)), ...p.feed(STREAM.subarray(j))];
      assert.deepEqual(summary(got), EXPECTED, `split at ${i},${j}`);
    }
  const p = new XsParser();
  const got = [];
  for (const b of STREAM) got.push(...p.feed(Uint8Array.of(b)));
  assert.deepEqual(summary(got), EXPECTED);
});

test("parser: every truncated prefix yields only the complete messages and reports truncation", () => {
  for (let i = 0; i < STREAM.length; i++) {
    const p = new XsParser();
    const got = p.feed(STREAM.subarray(0, i));
    const complete = i >= READ_A.length ? 1 : 0;
    assert.equal(got.length, complete, `prefix ${i}`);
    const partial = i !== 0 && i !== READ_A.length;
    assert.equal(p.pending, partial ? (i > READ_A.length ? i - READ_A.length : i) : 0);
    if (partial)
      assert.throws(
        () => p.end(),
        (e: unknown) => (e as XsStreamError).code === XS_STREAM_ERRORS.truncated,
      );
    else p.end();
  }
});

test("parser: zero-length payloads complete at the header", () => {
  const p = new XsParser();
  const m = p.feed(encodeMessage(XS_TYPES.TRANSACTION_START, 1, 0, new Uint8Array(0)));
  assert.equal(m.length, 1);
  assert.equal(m[0]!.payload.length, 0);
});

test("malformed: payload length above XENSTORE_PAYLOAD_MAX → XS_PAYLOAD_TOO_LARGE, and the parser stays failed", () => {
  const header = encodeMessage(XS_TYPES.READ, 1, 0, new Uint8Array(0));
  new DataView(header.buffer).setUint32(12, XENSTORE_PAYLOAD_MAX + 1, true);
  const p = new XsParser();
  assert.throws(
    () => p.feed(header.subarray(0, 16)),
    (e: unknown) => e instanceof XsStreamError && e.code === XS_STREAM_ERRORS.payloadTooLarge,
  );
  assert.equal(p.state, "failed");
  assert.throws(
    () => p.feed(Uint8Array.of(0)),
    (e: unknown) => e instanceof XsStreamError && e.code === XS_STREAM_ERRORS.afterFailure,
  );
});

test("malformed: a payload of exactly XENSTORE_PAYLOAD_MAX is accepted", () => {
  const p = new XsParser();
  const m = p.feed(encodeMessage(XS_TYPES.WRITE, 1, 0, new Uint8Array(XENSTORE_PAYLOAD_MAX)));
  assert.equal(m.length, 1);
});

test("malformed: stream ending inside a header → XS_TRUNCATED", () => {
  const p = new XsParser();
  p.feed(READ_A.subarray(0, 5));
  assert.throws(
    () => p.end(),
    (e: unknown) => (e as XsStreamError).code === XS_STREAM_ERRORS.truncated,
  );
});

test("daemon drops a connection that sends an oversize payload; other connections carry on", () => {
  const d = new Xenstored();
  const bad = new InProcessConnection(d, { domid: 0, privileged: true });
  const good = new InProcessConnection(d, { domid: 0, privileged: true });
  const header = encodeMessage(XS_TYPES.READ, 1, 0, new Uint8Array(0));
  new DataView(header.buffer).setUint32(12, 0xffffffff, true);
  // A valid request in the same chunk before the bad header is still answered.
  bad.sendRaw(Uint8Array.from([...encodeMessage(XS_TYPES.READ, 9, 0, nulStrings("/")), ...header]));
  assert.match(bad.closedReason ?? "", /XS_PAYLOAD_TOO_LARGE/);
  assert.equal(d.connectionCount, 1);
  const r = good.request(XS_TYPES.DIRECTORY, nulStrings("/"));
  assert.equal(r.error, undefined);
});
