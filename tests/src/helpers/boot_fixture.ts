import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** A boot fixture (tests/fixtures/boot/<file>) and a scratch folder for trees compiled from it. */
export interface BootFixture {
  /** The fixture's dts text. */
  readonly source: string;
  /** The scratch folder (for other files a test writes). */
  readonly dir: string;
  /** Compiles `dts` (default: the fixture) with the real dtc to `<name>.dtb`; fails the test if dtc does. */
  compile(name: string, dts?: string): string;
  /** The fixture with `from` replaced by `to` (which must be there: a stale variant fails loudly). */
  variant(from: string, to: string): string;
}

export function bootFixture(file: string): BootFixture {
  const source = readFileSync(fileURLToPath(new URL(`../../fixtures/boot/${file}`, import.meta.url)), "utf8");
  const dir = mkdtempSync(join(tmpdir(), `xenon-${file.replace(/\W/g, "-")}-`));
  return {
    source,
    dir,
    compile(name, dts = source) {
      const src = join(dir, `${name}.dts`);
      const out = join(dir, `${name}.dtb`);
      writeFileSync(src, dts);
      const r = spawnSync("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", out, src], { encoding: "utf8" });
      assert.equal(r.status, 0, `dtc failed: ${r.stderr}`);
      return out;
    },
    variant(from, to) {
      assert.ok(source.includes(from), `fixture lacks ${from}`);
      return source.replace(from, to);
    },
  };
}
