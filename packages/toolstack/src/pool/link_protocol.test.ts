import assert from "node:assert/strict";
import { test } from "node:test";
import { ProtocolError } from "../mgmt/protocol.js";
import { decodeLinkMsg, encodeLinkMsg, type LinkMsg, linkMac, MAX_LINK_FRAME_BYTES } from "./link_protocol.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fill = (b: number, n = 32) => new Uint8Array(n).fill(b);

// Byte literals written from the msgpack spec: 8x fixmap, ax fixstr, c4 bin8, c3/c2 true/false, c0 nil.
const N11 = "11".repeat(32);
const N22 = "22".repeat(32);
const M33 = "33".repeat(32);
const CASES: Array<[string, LinkMsg]> = [
  [
    `84 a1 74 a9 6368616c6c656e6765 a1 76 01 a4 686f7374 a1 61 a5 6e6f6e6365 c4 20 ${N11}`,
    { t: "challenge", v: 1, host: "a", nonce: fill(0x11) },
  ],
  [
    `85 a1 74 a4 61757468 a4 686f7374 a1 62 a3 75726c a8 77733a2f2f683a31 a5 6e6f6e6365 c4 20 ${N22} a3 6d6163 c4 20 ${M33}`,
    { t: "auth", host: "b", url: "ws://h:1", nonce: fill(0x22), mac: fill(0x33) },
  ],
  [
    `85 a1 74 a7 77656c636f6d65 a4 686f7374 a1 61 a3 75726c a8 77733a2f2f683a32 a3 6d6163 c4 20 ${M33}` +
      " a7 6d656d62657273 91 82 a4 686f7374 a1 63 a3 75726c a8 77733a2f2f683a33",
    { t: "welcome", host: "a", url: "ws://h:2", mac: fill(0x33), members: [{ host: "c", url: "ws://h:3" }] },
  ],
  [
    "82 a1 74 a7 72656675736564 a6 726561736f6e b5 61757468656e7469636174696f6e206661696c6564",
    { t: "refused", reason: "authentication failed" },
  ],
  ["82 a1 74 a2 6862 a3 736571 05", { t: "hb", seq: 5 }],
  [
    "84 a1 74 a3 726571 a2 6964 01 a2 6f70 ab 646f6d61696e2e6c697374 a4 61726773 80",
    { t: "req", id: 1, op: "domain.list", args: {} },
  ],
  ["84 a1 74 a3 726573 a2 6964 01 a2 6f6b c3 a6 726573756c74 c0", { t: "res", id: 1, ok: true, result: null }],
  [
    "84 a1 74 a3 726573 a2 6964 02 a2 6f6b c2 a5 6572726f72 82 a4 636f6465 a6 454e4f454e54 a7 6d657373616765 a1 78",
    { t: "res", id: 2, ok: false, error: { code: "ENOENT", message: "x" } },
  ],
  ["83 a1 74 a4 64617461 a3 6d6967 02 a4 64617461 c4 03 010203", { t: "data", mig: 2, data: hex("010203") }],
  // An Ethernet header alone: broadcast from 00:16:3e:00:00:01, ethertype 0x88b5.
  [
    "82 a1 74 a5 6672616d65 a4 64617461 c4 0e ffffffffffff 00163e000001 88b5",
    { t: "frame", data: hex("ffffffffffff 00163e000001 88b5") },
  ],
];

test("link messages encode to the documented bytes and decode back", () => {
  for (const [bytes, msg] of CASES) {
    assert.equal(toHex(encodeLinkMsg(msg)), toHex(hex(bytes)), msg.t);
    assert.deepEqual(decodeLinkMsg(hex(bytes)), msg, msg.t);
  }
});

test("every truncated prefix of every link message is refused with a ProtocolError", () => {
  for (const [bytes] of CASES) {
    const b = hex(bytes);
    for (let n = 0; n < b.length; n++)
      assert.throws(() => decodeLinkMsg(b.subarray(0, n)), ProtocolError, `${bytes} prefix ${n}`);
  }
});

test("a message split anywhere decodes only once whole", () => {
  const req = hex(CASES[5]![0]);
  for (let cut = 1; cut < req.length; cut++) {
    assert.throws(() => decodeLinkMsg(req.subarray(0, cut)), ProtocolError);
    assert.deepEqual(decodeLinkMsg(Buffer.concat([req.subarray(0, cut), req.subarray(cut)])), CASES[5]![1]);
  }
});

test("malformed link messages: each refused with its reason", () => {
  const bad: Array<[string, RegExp]> = [
    ["81 a1 74 a3 78797a", /unknown link message kind "xyz"/],
    ["90", /must be a map/],
    ["82 a1 74 a2 6862 a3 736571 ff", /u32 seq/], // seq -1
    ["83 a1 74 a2 6862 a3 736571 05 a1 78 c0", /unknown field 'x'/],
    // a nonce of 31 bytes
    [`84 a1 74 a9 6368616c6c656e6765 a1 76 01 a4 686f7374 a1 61 a5 6e6f6e6365 c4 1f ${"11".repeat(31)}`, /32 bytes/],
    // link version 2
    [`84 a1 74 a9 6368616c6c656e6765 a1 76 02 a4 686f7374 a1 61 a5 6e6f6e6365 c4 20 ${N11}`, /version 2/],
    ["83 a1 74 a3 726573 a2 6964 01 a2 6f6b c0", /ok true or false/],
    ["83 a1 74 a4 64617461 a3 6d6967 02 a4 64617461 a1 78", /bin data/],
    ["82 a1 74 a5 6672616d65 a4 64617461 c4 0d ffffffffffff 00163e000001 88", /frame' needs bin data of 14\.\.9014/],
    ["82 a1 74 a5 6672616d65 a4 64617461 a1 78", /frame' needs bin data/],
    ["82 a1 74 a2 6862 a3 736571 05 00", /holds 2 values/],
  ];
  for (const [bytes, re] of bad) assert.throws(() => decodeLinkMsg(hex(bytes)), re, bytes);
  assert.throws(() => decodeLinkMsg(new Uint8Array(MAX_LINK_FRAME_BYTES + 1)), /over the limit/);
});

test("the HMAC proofs match an independent computation (Python's hmac) and differ by role", () => {
  const secret = new TextEncoder().encode("0123456789abcdef");
  // python3: hmac.new(secret, b'xenon-pool/1 auth\0' + b'\x11'*32 + b'\x22'*32 + b'b', sha256)
  assert.equal(
    toHex(linkMac(secret, "auth", fill(0x11), fill(0x22), "b")),
    "8ed7335c2840db4957fbf2d158c031dd2b8eae44bfa90eaef5bf01774dcc8b82",
  );
  assert.equal(
    toHex(linkMac(secret, "welcome", fill(0x22), fill(0x11), "a")),
    "32fa05705d1089188402c93b4a850b52ac1d570c4cb550d4409714ac63dfa611",
  );
  assert.notEqual(
    toHex(linkMac(secret, "auth", fill(0x11), fill(0x22), "b")),
    toHex(linkMac(secret, "welcome", fill(0x11), fill(0x22), "b")),
  );
});
