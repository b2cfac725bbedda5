/** Test support for the layout tests: struct bytes written by hand, checked both ways. */
import assert from "node:assert/strict";
import { decode, encode, type StructLayout } from "./layout.js";

/** "00 60 45 …" -> bytes. */
export function hex(s: string): Uint8Array {
  return Uint8Array.from(
    s
      .trim()
      .split(/\s+/)
      .map((b) => Number.parseInt(b, 16)),
  );
}

/** n zero bytes, as hex text. */
export const z = (n: number): string => " 00".repeat(n);

/** The layout's size equals the literal's; encoding `values` gives exactly it; decoding it gives `values`. */
export function check<F extends string>(
  layout: StructLayout<F>,
  values: Partial<Record<F, number>>,
  bytes: string,
): void {
  const want = hex(bytes);
  assert.equal(layout.size, want.length, `${layout.name} size`);
  assert.deepEqual(encode(layout, values), want, layout.name);
  const back = decode(layout, want);
  for (const [k, v] of Object.entries(values) as Array<[F, number]>) assert.equal(back[k], v, `${layout.name}.${k}`);
}
