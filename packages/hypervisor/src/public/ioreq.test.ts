import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BufferedIopage,
  BufIoreq,
  bufIoreqWord,
  IOREQ_DIR_SHIFT,
  IOREQ_READ,
  IOREQS_PER_PAGE,
  Ioreq,
  IoreqState,
  IoreqType,
  parseBufIoreqWord,
} from "./ioreq.js";
import { check } from "./layout_check.js";

describe("ioreq.h layouts", () => {
  it("ioreq_t is 32 bytes: addr, data, count, size, vp_eport, then the state/dir bitfield byte and type", () => {
    // An MMIO read of 4 bytes at 0x02000050 on port 7, state READY (1) | dir READ (1 << 5) = 0x21.
    check(
      Ioreq,
      {
        addr: 0x0200_0050,
        data: 0x1122_3344,
        count: 1,
        size: 4,
        vp_eport: 7,
        pad0: 0,
        flags: IoreqState.READY | (IOREQ_READ << IOREQ_DIR_SHIFT),
        type: IoreqType.COPY,
      },
      "50 00 00 02 00 00 00 00  44 33 22 11 00 00 00 00  01 00 00 00 04 00 00 00  07 00 00 00 00 00 21 01",
    );
    assert.equal(IOREQS_PER_PAGE, 128);
  });

  it("buffered_iopage starts with read_pointer then write_pointer; buf_ioreq is 8 bytes", () => {
    check(BufferedIopage, { read_pointer: 3, write_pointer: 0x1ff }, "03 00 00 00 ff 01 00 00");
    // type COPY, dir write, size 4 (log2 2), addr 0x00050: word = 0x01 | 2<<10 | 0x50<<12 = 0x00050801
    const word = bufIoreqWord(IoreqType.COPY, 0, 2, 0x0200_0050);
    assert.equal(word, 0x0005_0801);
    check(BufIoreq, { word, data: 1 }, "01 08 05 00 01 00 00 00");
    assert.deepEqual(parseBufIoreqWord(word), { type: 1, dir: 0, size: 4, addr20: 0x50 });
    assert.deepEqual(parseBufIoreqWord(bufIoreqWord(IoreqType.COPY, 1, 0, 0xfffff)), {
      type: 1,
      dir: 1,
      size: 1,
      addr20: 0xfffff,
    });
  });
});
