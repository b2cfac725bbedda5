/**
 * VirtIO-Grant DMA addresses (Linux drivers/xen/grant-dma-ops.c, xen-abi.md §8): bit 63 marks a
 * grant address; bits 12..62 hold the grant reference of the first page and bits 0..11 the
 * offset in it. A buffer of n pages uses n consecutive grant references. Addresses travel as two
 * u32 halves (hi, lo) so the hot path needs no BigInt.
 */
import { Gntst } from "@xenon/hypervisor";
import { pagesSpanned } from "./guest_memory.js";

export const GRANT_DMA_HI_BIT = 0x8000_0000;

export function isGrantAddr(hi: number): boolean {
  return (hi & GRANT_DMA_HI_BIT) !== 0;
}

/** The first page's grant reference; -1 if it does not fit 32 bits (no such grant can exist). */
export function grantRefOf(hi: number, lo: number): number {
  const h = hi & 0x7fff_ffff;
  if (h >>> 12 !== 0) return -1;
  return ((h << 20) | (lo >>> 12)) >>> 0;
}

export function pageOffsetOf(lo: number): number {
  return lo & 0xfff;
}

/** Largest range one map call covers (a blk segment or a ring area is far smaller). */
export const MAX_MAP_BYTES = 4 << 20;

/** A grant-DMA range: first grant reference, offset in its page, pages (one gref each). */
export interface GrantRange {
  readonly gref: number;
  readonly first: number;
  readonly pages: number;
}

/**
 * Checks a device-supplied (hi, lo, len) range as both guest-memory implementations must: a grant
 * address, 1..MAX_MAP_BYTES long, every grant reference it spans within 32 bits. The reason as a
 * string when it is refused.
 */
export function grantRange(hi: number, lo: number, len: number): GrantRange | string {
  if (!isGrantAddr(hi)) return "not a grant address (foreign mapping is not allowed)";
  if (len <= 0 || len > MAX_MAP_BYTES) return `length ${len} out of range`;
  const gref = grantRefOf(hi, lo);
  const first = pageOffsetOf(lo);
  const pages = pagesSpanned(first, len);
  if (gref < 0 || gref + pages - 1 > 0xffff_ffff) return "grant reference out of range";
  return { gref, first, pages };
}

/** The grant-DMA address of `offset` in page `gref`, as [hi, lo]. */
export function grantDmaAddr(gref: number, offset = 0): [number, number] {
  return [(GRANT_DMA_HI_BIT | (gref >>> 20)) >>> 0, ((gref << 12) | (offset & 0xfff)) >>> 0];
}

/** Adds `n` (< 2^32) to a 64-bit (hi, lo) address; null when it passes 2^64. */
export function addrAdd(hi: number, lo: number, n: number): [number, number] | null {
  const sum = lo + n;
  const carry = sum >= 2 ** 32 ? 1 : 0;
  const nhi = hi + carry;
  if (nhi >= 2 ** 32) return null;
  return [nhi >>> 0, sum >>> 0];
}

/** Printable 64-bit address. */
export function fmtAddr(hi: number, lo: number): string {
  return `0x${hi.toString(16).padStart(8, "0")}${lo.toString(16).padStart(8, "0")}`;
}

/** A grant operation's status for a log line: "-1 (GNTST_general_error)". */
export function fmtGntst(status: number): string {
  const name = Object.entries(Gntst).find(([, v]) => v === status)?.[0];
  return name === undefined ? String(status) : `${status} (GNTST_${name})`;
}
