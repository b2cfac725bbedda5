import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeStreamValue, encodeStreamValue, MAX_STREAM_FRAME, StreamError, StreamParser } from "./stream.js";

// Two frames: channel 0 carrying {a: 1} (msgpackr writes maps as map16), channel 1 carrying true.
const FRAME_A = [0x07, 0x00, 0x00, 0x00, 0x00, 0xde, 0x00, 0x01, 0xa1, 0x61, 0x01];
const FRAME_B = [0x02, 0x00, 0x00, 0x00, 0x01, 0xc3];
const TWO = Uint8Array.from([...FRAME_A, ...FRAME_B]);
const FIRST = FRAME_A.length;

const values = (p: StreamParser, chunk: Uint8Array) =>
  p.feed(chunk).map((f) => [f.channel, decodeStreamValue(f)] as const);

describe("hypercall port over a byte stream (process-mode framing)", () => {
  it("encodes a frame byte by byte", () => {
    assert.deepEqual(encodeStreamValue(0, { a: 1 }), TWO.subarray(0, FIRST));
    assert.deepEqual(encodeStreamValue(1, true), TWO.subarray(FIRST));
  });

  it("parses two frames fed at every split point, in two writes", () => {
    for (let cut = 0; cut <= TWO.length; cut++) {
      const p = new StreamParser();
      const got = [...values(p, TWO.subarray(0, cut)), ...values(p, TWO.subarray(cut))];
      assert.deepEqual(got, [
        [0, { a: 1 }],
        [1, true],
      ]);
      assert.equal(p.pending, 0);
    }
  });

  it("parses them fed one byte at a time", () => {
    const p = new StreamParser();
    const got = [];
    for (const b of TWO) got.push(...values(p, Uint8Array.of(b)));
    assert.equal(got.length, 2);
  });

  it("every truncated prefix yields only the frames it completes and holds the rest", () => {
    for (let n = 0; n < TWO.length; n++) {
      const p = new StreamParser();
      const got = values(p, TWO.subarray(0, n));
      assert.equal(got.length, n >= FIRST ? 1 : 0, `prefix ${n}`);
      assert.equal(p.pending, n >= FIRST ? n - FIRST : n, `prefix ${n}`);
    }
  });

  it("refuses a length of 0 or over the limit, and an unknown channel, and stays failed", () => {
    assert.throws(() => new StreamParser().feed(Uint8Array.of(0, 0, 0, 0)), StreamError);
    const big = new Uint8Array(4);
    new DataView(big.buffer).setUint32(0, MAX_STREAM_FRAME + 1, true);
    const p = new StreamParser();
    assert.throws(() => p.feed(big), /out of range/);
    assert.throws(() => p.feed(TWO), StreamError);
    assert.throws(() => new StreamParser().feed(Uint8Array.of(1, 0, 0, 0, 7)), /unknown channel 7/);
  });

  it("an undecodable payload is a StreamError when decoded, not a crash", () => {
    // A map16 announcing five entries and holding none.
    const [f] = new StreamParser().feed(Uint8Array.of(4, 0, 0, 0, 0, 0xde, 0x00, 0x05));
    assert.throws(() => decodeStreamValue(f!), StreamError);
  });
});
