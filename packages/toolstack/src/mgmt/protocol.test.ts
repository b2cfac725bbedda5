import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeReply, decodeRequest, encodeFrame, MAX_FRAME_BYTES, ProtocolError } from "./protocol.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Byte literals written from the msgpack spec: 8x fixmap, ax fixstr, 0x..7f positive fixint,
// cd uint16, c0 nil, c2/c3 false/true, c4 bin8.
const HELLO = hex("83 a2 6964 01 a2 6f70 a5 68656c6c6f a4 61726773 80"); // {id:1, op:"hello", args:{}}
const PAUSE = hex("83 a2 6964 cd012c a2 6f70 ac 646f6d61696e2e7061757365 a4 61726773 81 a3 646f6d a3 776562");
const OK = hex("83 a2 6964 07 a2 6f6b c3 a6 726573756c74 c0"); // {id:7, ok:true, result:nil}
const ERR = hex("83 a2 6964 07 a2 6f6b c2 a5 6572726f72 82 a4 636f6465 a5 4553524348 a7 6d657373616765 a1 78");
const DATA = hex("82 a2 6964 09 a4 64617461 c4 03 68690a"); // {id:9, data:bin "hi\n"}
const END = hex("82 a2 6964 09 a3 656e64 a4 676f6e65"); // {id:9, end:"gone"}

test("frames encode to the documented bytes", () => {
  assert.equal(toHex(encodeFrame({ id: 1, op: "hello", args: {} })), toHex(HELLO));
  assert.equal(toHex(encodeFrame({ id: 300, op: "domain.pause", args: { dom: "web" } })), toHex(PAUSE));
  assert.equal(toHex(encodeFrame({ id: 7, ok: true, result: null })), toHex(OK));
  assert.equal(toHex(encodeFrame({ id: 7, ok: false, error: { code: "ESRCH", message: "x" } })), toHex(ERR));
  assert.equal(toHex(encodeFrame({ id: 9, data: new Uint8Array([0x68, 0x69, 0x0a]) })), toHex(DATA));
  assert.equal(toHex(encodeFrame({ id: 9, end: "gone" })), toHex(END));
});

test("requests and replies decode from byte literals", () => {
  assert.deepEqual(decodeRequest(HELLO), { id: 1, op: "hello", args: {} });
  assert.deepEqual(decodeRequest(PAUSE), { id: 300, op: "domain.pause", args: { dom: "web" } });
  // args may be left out
  assert.deepEqual(decodeRequest(hex("82 a2 6964 02 a2 6f70 a4 696e666f")), { id: 2, op: "info", args: {} });
  assert.deepEqual(decodeReply(OK), { id: 7, ok: true, result: null });
  assert.deepEqual(decodeReply(ERR), { id: 7, ok: false, error: { code: "ESRCH", message: "x" } });
  const d = decodeReply(DATA);
  assert.ok("data" in d && Buffer.from(d.data).toString() === "hi\n");
  assert.deepEqual(decodeReply(END), { id: 9, end: "gone" });
});

test("every truncated prefix of every frame is refused with a ProtocolError", () => {
  for (const frame of [HELLO, PAUSE]) {
    for (let n = 0; n < frame.length; n++)
      assert.throws(() => decodeRequest(frame.subarray(0, n)), ProtocolError, `request prefix ${n}`);
  }
  for (const frame of [OK, ERR, DATA, END]) {
    for (let n = 0; n < frame.length; n++)
      assert.throws(() => decodeReply(frame.subarray(0, n)), ProtocolError, `reply prefix ${n}`);
  }
});

test("a frame split anywhere decodes only once whole (the reassembled bytes are what counts)", () => {
  for (let cut = 1; cut < PAUSE.length; cut++) {
    const parts = [PAUSE.subarray(0, cut), PAUSE.subarray(cut)];
    assert.throws(() => decodeRequest(parts[0]!), ProtocolError);
    const whole = Buffer.concat(parts);
    assert.deepEqual(decodeRequest(whole), { id: 300, op: "domain.pause", args: { dom: "web" } });
  }
});

test("malformed requests: each refused with its reason, the id kept when readable", () => {
  const cases: Array<[string, string, RegExp, number | null]> = [
    ["trailing byte", "83a2696401a26f70a568656c6c6fa46172677380 00", /holds 2 values/, null],
    ["not a map", "93 01 02 03", /must be a map/, null],
    ["nil", "c0", /must be a map/, null],
    ["no id", "81 a2 6f70 a4 696e666f", /valid id/, null],
    ["negative id", "82 a2 6964 ff a2 6f70 a4 696e666f", /valid id/, null],
    ["string id", "82 a2 6964 a1 31 a2 6f70 a4 696e666f", /valid id/, null],
    ["no op", "81 a2 6964 05", /without an op/, 5],
    ["empty op", "82 a2 6964 05 a2 6f70 a0", /without an op/, 5],
    ["op not a string", "82 a2 6964 05 a2 6f70 07", /without an op/, 5],
    ["args a list", "83 a2 6964 05 a2 6f70 a4 696e666f a4 61726773 90", /args must be a map/, 5],
    ["unknown field", "83 a2 6964 05 a2 6f70 a4 696e666f a1 78 01", /unknown request field 'x'/, 5],
  ];
  for (const [what, bytes, re, id] of cases) {
    assert.throws(
      () => decodeRequest(hex(bytes)),
      (e: unknown) => e instanceof ProtocolError && re.test(e.message) && e.id === id,
      what,
    );
  }
  assert.throws(() => decodeRequest(new Uint8Array(MAX_FRAME_BYTES + 1)), /over the limit/);
});

test("malformed replies are refused", () => {
  for (const bytes of [
    "82 a2 6964 c0 a2 6f6b c3", // ok with a nil id
    "82 a2 6964 01 a2 6f6b c2", // error without a body
    "81 a2 6964 01", // no kind
    "82 a2 6964 01 a4 64617461 a1 78", // data that is not bin
  ])
    assert.throws(() => decodeReply(hex(bytes)), ProtocolError, bytes);
});
