import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hex, z } from "../public/layout_check.js";
import { makeHost } from "../test_support.js";
import { decodePageData, encodePageData, PAGE_DATA_MAX_BODY } from "./records.js";
import { restoreBodyLimit, StreamRestore } from "./restore.js";
import { RecType } from "./stream_format.js";
import { MigrationStreamError, type StreamItem, StreamReader } from "./stream_reader.js";
import { encodeHeaders, encodeRecord } from "./stream_writer.js";

const HEADERS_LE =
  "ff ff ff ff ff ff ff ff 58 45 4e 46 00 00 00 03 00 00" +
  z(6) +
  // domain header: type "RV32" (0x52563332) little-endian, page_shift 12, Xen 4.17
  " 32 33 56 52 0c 00 00 00 04 00 00 00 11 00 00 00";

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** headers, a 3-byte optional record (padded to 8), a PAGE_DATA with one XTAB pfn, END. */
const SAMPLE = hex(
  HEADERS_LE +
    " 01 00 00 80 03 00 00 00 aa bb cc 00 00 00 00 00" +
    " 01 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00 01 00 08 00 00 00 00 f0" +
    " 00 00 00 00 00 00 00 00",
);

function readAll(chunks: readonly Uint8Array[]): StreamItem[] {
  const r = new StreamReader(restoreBodyLimit);
  const items = chunks.flatMap((c) => r.push(c));
  r.finish();
  return items;
}

describe("migration stream framing", () => {
  it("writes the image header, domain header and records byte for byte", () => {
    assert.deepEqual(encodeHeaders(), hex(HEADERS_LE));
    assert.deepEqual(
      cat(
        encodeHeaders(),
        encodeRecord(0x80000001, hex("aa bb cc")),
        encodeRecord(RecType.PAGE_DATA, encodePageData([0x80001], [0xf], new Uint8Array(0))),
        encodeRecord(RecType.END, new Uint8Array(0)),
      ),
      SAMPLE,
    );
  });

  it("reads the same items from every split of the bytes", () => {
    const whole = readAll([SAMPLE]);
    assert.equal(whole.length, 4);
    assert.equal(whole[0]!.kind, "header");
    const recs = whole.filter((i) => i.kind === "record");
    assert.deepEqual(
      recs.map((r) => [r.type >>> 0, r.offset, [...r.body]]),
      [
        [0x80000001, 40, [0xaa, 0xbb, 0xcc]],
        [RecType.PAGE_DATA, 56, [...SAMPLE.subarray(64, 80)]],
        [RecType.END, 80, []],
      ],
    );
    for (let cut = 0; cut <= SAMPLE.length; cut++) {
      assert.deepEqual(readAll([SAMPLE.subarray(0, cut), SAMPLE.subarray(cut)]), whole, `split at ${cut}`);
    }
    assert.deepEqual(readAll([...SAMPLE].map((b) => Uint8Array.of(b))), whole, "one byte at a time");
  });

  it("refuses every truncated prefix with a clear error", () => {
    for (let n = 0; n < SAMPLE.length; n++) {
      const r = new StreamReader(restoreBodyLimit);
      r.push(SAMPLE.subarray(0, n));
      assert.throws(
        () => r.finish(),
        (e: Error) => e instanceof MigrationStreamError && /truncated/.test(e.message),
        `prefix ${n}`,
      );
    }
  });

  it("refuses malformed framing", () => {
    const bad = (bytes: Uint8Array, re: RegExp) =>
      assert.throws(
        () => readAll([bytes]),
        (e: Error) => e instanceof MigrationStreamError && re.test(e.message),
        String(re),
      );
    const mut = (at: number, v: number) => {
      const b = SAMPLE.slice();
      b[at] = v;
      return b;
    };
    bad(mut(3, 0xfe), /marker/);
    bad(mut(8, 0x59), /XENF/);
    bad(mut(15, 2), /version 2 not supported/);
    bad(mut(17, 2), /reserved bits/);
    bad(mut(20, 1), /reserved bytes/);
    bad(mut(24, 0x01), /domain type/);
    bad(mut(28, 13), /page_shift/);
    bad(mut(53, 1), /padding/);
    bad(cat(SAMPLE, hex("00")), /after the END/);
    bad(
      cat(encodeHeaders(), hex("00 00 00 00 08 00 00 00"), z8()),
      /END at offset 40: body of 8 bytes exceeds the limit of 0/,
    );
    // Lengths are checked before anything is buffered: a hostile length costs nothing.
    const r = new StreamReader(restoreBodyLimit);
    assert.throws(
      () => r.push(cat(encodeHeaders(), hex("01 00 00 00 ff ff ff ff"))),
      /PAGE_DATA at offset 40: body of 4294967295 bytes exceeds the limit of 4202504/,
    );
    assert.equal(PAGE_DATA_MAX_BODY, 4202504);
    bad(cat(encodeHeaders(), hex("07 00 00 00 00 10 00 01")), /SHARED_INFO .* exceeds/);
    bad(cat(encodeHeaders(), hex("55 00 00 00 00 00 00 09")), /exceeds the limit of 134217728/);
  });

  it("decodes big-endian streams too", () => {
    const be = cat(
      encodeHeaders(false),
      encodeRecord(RecType.PAGE_DATA, encodePageData([0x80002], [0xe], new Uint8Array(0), false), false),
      encodeRecord(RecType.END, new Uint8Array(0), false),
    );
    assert.deepEqual(be.subarray(24, 28), hex("52 56 33 32"));
    const items = readAll([be]);
    const page = items[1]!;
    assert.ok(page.kind === "record");
    assert.deepEqual(decodePageData(page.body, false).pfns, [0x80002]);
  });
});

function z8(): Uint8Array {
  return new Uint8Array(8);
}

describe("PAGE_DATA bodies", () => {
  const body = (s: string) => hex(s);
  const bad = (b: Uint8Array, re: RegExp) =>
    assert.throws(
      () => decodePageData(b, true),
      (e: Error) => e instanceof MigrationStreamError && re.test(e.message),
      String(re),
    );

  it("carries pfn and type nibble in each u64 and data for NOTAB only", () => {
    const page = new Uint8Array(4096).fill(7);
    const b = encodePageData([0x80000, 0x80001, 0x80002], [0, 0xe, 0xf], page);
    assert.deepEqual(
      b.subarray(0, 32),
      hex("03 00 00 00 00 00 00 00 00 00 08 00 00 00 00 00 01 00 08 00 00 00 00 e0 02 00 08 00 00 00 00 f0"),
    );
    const d = decodePageData(b, true);
    assert.deepEqual(d.pfns, [0x80000, 0x80001, 0x80002]);
    assert.deepEqual(d.types, [0, 0xe, 0xf]);
    assert.equal(d.data.length, 4096);
  });

  it("refuses bad counts, lengths, pfns and types", () => {
    bad(body("00 00 00 00 00 00 00 00"), /page count of 0/);
    bad(body("01 04 00 00 00 00 00 00"), /1025 pages/);
    bad(body("01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 e0"), /reserved field/);
    bad(body("02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 e0"), /too short for its pfn array/);
    bad(body("01 00 00 00 00 00 00 00 00 00 10 00 00 00 00 e0"), /beyond the highest pfn/);
    bad(body("01 00 00 00 00 00 00 00 00 00 00 00 01 00 00 e0"), /beyond the highest pfn/);
    bad(body("01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 10"), /page type 0x1 not supported/);
    bad(body("01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), /must be 4112 bytes, not 16/);
    bad(body(`01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 e0${z(8)}`), /must be 16 bytes, not 24/);
    bad(body("01 00 00"), /shorter than its header/);
  });
});

describe("restoring malformed streams", () => {
  const info = hex(`01 00 00 00 10 00 00 00 10 00 00 00 3f 00 00 00 01 00 00 00 01 00 00 00${z(8)}`);
  const start = () =>
    cat(
      encodeHeaders(),
      encodeRecord(RecType.RV32_DOMAIN_INFO, info),
      encodeRecord(RecType.STATIC_DATA_END, new Uint8Array(0)),
    );
  const refused = (bytes: Uint8Array, re: RegExp) => {
    const { hv } = makeHost();
    const before = hv.domains.count;
    const s = new StreamRestore(hv, { name: "r" });
    assert.throws(
      () => {
        s.push(bytes);
        s.finish();
      },
      (e: Error) => e instanceof MigrationStreamError && re.test(e.message),
      String(re),
    );
    assert.equal(hv.domains.list().filter((d) => !d.dying).length, before, "nothing left behind");
  };

  it("refuses an unknown mandatory record and skips an unknown optional one", () => {
    refused(cat(start(), encodeRecord(0x13, new Uint8Array(0))), /unknown mandatory record type 0x00000013/);
    const { hv } = makeHost();
    const s = new StreamRestore(hv, { name: "r" });
    s.push(cat(start(), encodeRecord(0x8000ffff, hex("01"))));
    assert.throws(() => s.finish(), /truncated/);
  });

  it("refuses records out of order, twice, or missing", () => {
    refused(cat(encodeHeaders(), encodeRecord(RecType.STATIC_DATA_END, new Uint8Array(0))), /no RV32_DOMAIN_INFO/);
    refused(
      cat(encodeHeaders(), encodeRecord(RecType.PAGE_DATA, encodePageData([0x80000], [0xe], new Uint8Array(0)))),
      /PAGE_DATA before STATIC_DATA_END/,
    );
    refused(cat(start(), encodeRecord(RecType.STATIC_DATA_END, new Uint8Array(0))), /second STATIC_DATA_END/);
    refused(cat(start(), encodeRecord(RecType.END, new Uint8Array(0))), /no RV32_VCPU record for vCPU 0/);
    refused(cat(start(), encodeRecord(RecType.SHARED_INFO, new Uint8Array(16))), /one page/);
  });

  it("refuses more pages than max_pages and impossible domain limits", () => {
    const pfns = Array.from({ length: 17 }, (_, i) => 0x80000 + i);
    refused(
      cat(
        start(),
        encodeRecord(
          RecType.PAGE_DATA,
          encodePageData(
            pfns,
            pfns.map(() => 0xe),
            new Uint8Array(0),
          ),
        ),
      ),
      /more pages than max_pages \(16\)/,
    );
    const huge = info.slice();
    huge[0] = 0xff; // 255 vCPUs: beyond MAX_VCPUS
    refused(
      cat(
        encodeHeaders(),
        encodeRecord(RecType.RV32_DOMAIN_INFO, huge),
        encodeRecord(RecType.STATIC_DATA_END, new Uint8Array(0)),
      ),
      /cannot create the domain/,
    );
  });
});
