/**
 * Property values: builders (what a .dts writes as <cells>, "strings", [bytes]) and strict
 * decoders. Cells are big-endian u32; a u64 is two cells, high word first. Strings are UTF-8 and
 * NUL-terminated; a string list is the strings back to back. Decoders throw FdtError
 * FDT_ERR_BADVALUE when a value has the wrong length or form, never return a partial result.
 */
import { FDT_MAX_NCELLS } from "./constants.js";
import { FdtError } from "./errors.js";

const U32_MAX = 0xffffffff;

const encoder = new TextEncoder();
// fatal: a value that is not valid UTF-8 is reported, not silently replaced with U+FFFD.
const decoder = new TextDecoder("utf-8", { fatal: true });

function checkU32(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new FdtError("FDT_ERR_BADVALUE", `${v} is not a u32`);
  return v;
}

function toBigCell(v: bigint | number, cells: number): bigint {
  // Unsafe numbers have already lost precision; refuse rather than encode a neighbour.
  const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
  if (b < 0n || b >= 1n << BigInt(32 * cells)) {
    throw new FdtError("FDT_ERR_BADVALUE", `${v} does not fit in ${cells} cell(s)`);
  }
  return b;
}

/** Concatenates value fragments, like `prop = <1>, "a", [00];` in a .dts. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An empty (boolean) property such as `dma-coherent;`. */
export function empty(): Uint8Array {
  return new Uint8Array(0);
}

/** `<a b c>`: each value a u32 cell. */
export function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint32(i * 4, checkU32(values[i]!));
  return out;
}

/** `/bits/ 64 <a b>`, i.e. each value as two cells (high, low). */
export function u64(...values: (bigint | number)[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setBigUint64(i * 8, toBigCell(values[i]!, 2));
  return out;
}

/** One number spread over `count` cells (e.g. an address in #address-cells cells). */
export function cells(value: bigint | number, count: number): Uint8Array {
  checkNcells(count, 0, "cell count");
  let b = toBigCell(value, count);
  const out = new Uint8Array(count * 4);
  const dv = new DataView(out.buffer);
  for (let i = count - 1; i >= 0; i--) {
    dv.setUint32(i * 4, Number(b & 0xffffffffn));
    b >>= 32n;
  }
  return out;
}

export interface RegEntry {
  address: bigint;
  size: bigint;
}

/** A `reg`-style list of (address, size) pairs in the given cell sizes. */
export function regValue(entries: readonly RegEntry[], addressCells: number, sizeCells: number): Uint8Array {
  return concat(...entries.flatMap((e) => [cells(e.address, addressCells), cells(e.size, sizeCells)]));
}

/** `"text"`: UTF-8 plus the terminating NUL. */
export function str(s: string): Uint8Array {
  const body = encoder.encode(s);
  if (body.includes(0)) throw new FdtError("FDT_ERR_BADVALUE", "string contains NUL");
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  return out;
}

/** `"a", "b"`: each string NUL-terminated, back to back. */
export function strList(...strings: string[]): Uint8Array {
  return concat(...strings.map(str));
}

/** `[00 01 02]`: raw bytes (copied). */
export function bytes(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (!Number.isInteger(b) || b < 0 || b > 0xff) throw new FdtError("FDT_ERR_BADVALUE", `${b} is not a byte`);
    out[i] = b;
  }
  return out;
}

// --- decoders --------------------------------------------------------------------------------

const view = (v: Uint8Array): DataView => new DataView(v.buffer, v.byteOffset, v.byteLength);

/** Exactly one cell. */
export function readU32(v: Uint8Array): number {
  if (v.length !== 4) throw new FdtError("FDT_ERR_BADVALUE", `expected 4 bytes for a u32, got ${v.length}`);
  return view(v).getUint32(0);
}

/** Any number of whole cells. */
export function readU32Array(v: Uint8Array): number[] {
  if (v.length % 4 !== 0) throw new FdtError("FDT_ERR_BADVALUE", `${v.length} bytes is not a whole number of cells`);
  const dv = view(v);
  return Array.from({ length: v.length / 4 }, (_, i) => dv.getUint32(i * 4));
}

/** Exactly two cells, as one u64. */
export function readU64(v: Uint8Array): bigint {
  if (v.length !== 8) throw new FdtError("FDT_ERR_BADVALUE", `expected 8 bytes for a u64, got ${v.length}`);
  return view(v).getBigUint64(0);
}

/** `count` cells starting at cell index `at`, as one number (0 cells read as 0). */
export function readCells(v: Uint8Array, at: number, count: number): bigint {
  checkNcells(count, 0, "cell count");
  if (!Number.isInteger(at) || at < 0 || (at + count) * 4 > v.length) {
    throw new FdtError("FDT_ERR_BADVALUE", `cells ${at}..${at + count} outside a ${v.length}-byte value`);
  }
  const dv = view(v);
  let out = 0n;
  for (let i = 0; i < count; i++) out = (out << 32n) | BigInt(dv.getUint32((at + i) * 4));
  return out;
}

/** Decodes a `reg`-style list given the parent's #address-cells / #size-cells. */
export function decodeReg(v: Uint8Array, addressCells: number, sizeCells: number): RegEntry[] {
  checkNcells(addressCells, 1, "#address-cells");
  checkNcells(sizeCells, 0, "#size-cells");
  const stride = (addressCells + sizeCells) * 4;
  if (v.length % stride !== 0) {
    throw new FdtError("FDT_ERR_BADVALUE", `${v.length} bytes is not a multiple of the ${stride}-byte reg entry`);
  }
  const out: RegEntry[] = [];
  for (let at = 0; at < v.length / 4; at += addressCells + sizeCells) {
    out.push({ address: readCells(v, at, addressCells), size: readCells(v, at + addressCells, sizeCells) });
  }
  return out;
}

/** Exactly one NUL-terminated UTF-8 string. */
export function readString(v: Uint8Array): string {
  const list = readStringList(v);
  if (list.length !== 1) throw new FdtError("FDT_ERR_BADVALUE", `expected one string, found ${list.length}`);
  return list[0]!;
}

/** One or more NUL-terminated UTF-8 strings; the value must end in NUL. */
export function readStringList(v: Uint8Array): string[] {
  if (v.length === 0 || v[v.length - 1] !== 0) throw new FdtError("FDT_ERR_BADVALUE", "not NUL-terminated");
  const out: string[] = [];
  let start = 0;
  while (start < v.length) {
    const end = v.indexOf(0, start);
    try {
      out.push(decoder.decode(v.subarray(start, end)));
    } catch (cause) {
      throw new FdtError("FDT_ERR_BADVALUE", "string is not valid UTF-8", undefined, { cause });
    }
    start = end + 1;
  }
  return out;
}

export function checkNcells(n: number, min: number, what: string): number {
  if (!Number.isInteger(n) || n < min || n > FDT_MAX_NCELLS) {
    throw new FdtError("FDT_ERR_BADNCELLS", `${what} ${n} outside ${min}..${FDT_MAX_NCELLS}`);
  }
  return n;
}
