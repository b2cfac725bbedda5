/**
 * Helpers for the FDT tests: running dtc, locating fixtures, and assembling hand-made blobs.
 * Tests run from dist/fdt/, so fixtures are found relative to the source tree.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FDT_MAGIC, FdtHeader, FdtToken } from "./constants.js";

/** src/fdt/fixtures, from either src/fdt or dist/fdt. */
export const FIXTURES_DIR = fileURLToPath(new URL("../../src/fdt/fixtures/", import.meta.url));

export function fixturePath(name: string): string {
  return `${FIXTURES_DIR}${name}`;
}

export function fixtureNames(ext: string): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((f) => f.endsWith(ext))
    .sort();
}

export function readFixture(name: string): string {
  return readFileSync(fixturePath(name), "utf8");
}

let dtcChecked: string | undefined | null = null;

/** dtc's version line, or undefined if dtc cannot be run. */
export function dtcVersion(): string | undefined {
  if (dtcChecked === null) {
    const r = spawnSync("dtc", ["--version"], { encoding: "utf8" });
    dtcChecked = r.error || r.status !== 0 ? undefined : r.stdout.trim();
  }
  return dtcChecked;
}

export const NO_DTC = "dtc (Debian package device-tree-compiler) is not installed; run 'pnpm system-deps'";

/** Runs dtc with `args` (input on stdin when given); throws with dtc's stderr on failure. */
export function dtc(args: string[], input?: Uint8Array | string): Buffer {
  const r = spawnSync("dtc", ["-q", ...args], { input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`dtc ${args.join(" ")} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** DTS source text → DTB bytes, as `dtc -I dts -O dtb` makes them. */
export function dtsToDtb(source: string): Buffer {
  return dtc(["-I", "dts", "-O", "dtb", "-o", "-", "-"], source);
}

/** DTB bytes → DTS text, as `dtc -I dtb -O dts` decompiles them. */
export function dtbToDts(blob: Uint8Array): string {
  return dtc(["-I", "dtb", "-O", "dts", "-o", "-", "-"], blob).toString("utf8");
}

/** Deterministic PRNG (mulberry32), so randomised tests are reproducible from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- hand-assembled blobs --------------------------------------------------------------------

/** A struct-block word sequence builder for crafting (possibly malformed) blobs. */
export class StructBuilder {
  readonly words: number[] = [];
  begin(name: string): this {
    this.words.push(FdtToken.BEGIN_NODE, ...nameWords(name));
    return this;
  }
  end(): this {
    this.words.push(FdtToken.END_NODE);
    return this;
  }
  prop(nameoff: number, value: number[] = [], len = value.length * 4): this {
    this.words.push(FdtToken.PROP, len, nameoff, ...value);
    return this;
  }
  nop(): this {
    this.words.push(FdtToken.NOP);
    return this;
  }
  finish(): this {
    this.words.push(FdtToken.END);
    return this;
  }
  raw(...words: number[]): this {
    this.words.push(...words);
    return this;
  }
}

function nameWords(name: string): number[] {
  const b = new Uint8Array(Math.floor(name.length / 4) * 4 + 4);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i);
  const dv = new DataView(b.buffer);
  return Array.from({ length: b.length / 4 }, (_, i) => dv.getUint32(i * 4));
}

/**
 * Lays out header (40 bytes) + empty rsvmap + struct + strings like dtc, then applies header
 * overrides, so a test can corrupt exactly one thing.
 */
export function assemble(
  struct: StructBuilder | number[],
  strings: string,
  overrides: Partial<Record<keyof typeof FdtHeader, number>> = {},
): Uint8Array {
  const words = Array.isArray(struct) ? struct : struct.words;
  const structOff = 40 + 16;
  const stringsOff = structOff + words.length * 4;
  const total = stringsOff + strings.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const fields: Record<keyof typeof FdtHeader, number> = {
    magic: FDT_MAGIC,
    totalsize: total,
    offDtStruct: structOff,
    offDtStrings: stringsOff,
    offMemRsvmap: 40,
    version: 17,
    lastCompVersion: 16,
    bootCpuidPhys: 0,
    sizeDtStrings: strings.length,
    sizeDtStruct: words.length * 4,
    ...overrides,
  };
  for (const [k, off] of Object.entries(FdtHeader)) dv.setUint32(off, fields[k as keyof typeof FdtHeader]);
  for (let i = 0; i < words.length; i++) dv.setUint32(structOff + i * 4, words[i]!);
  for (let i = 0; i < strings.length; i++) out[stringsOff + i] = strings.charCodeAt(i);
  return out;
}
