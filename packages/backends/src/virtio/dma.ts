/**
 * VirtIO-Grant DMA addresses (Linux drivers/xen/grant-dma-ops.c, xen-abi.md §8): bit 63 marks a
 * grant address; bits 12..62 hold the grant reference of the first page and bits 0..11 the
 * offset in it. A buffer of n pages uses n consecutive grant references. Addresses travel as two
 * u32 halves (hi, lo) so the hot path needs no BigInt.
 */

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
