import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/** The layering rule's own tests: each violation it must catch, in a scratch tree. */
const RULE = fileURLToPath(new URL("../../scripts/lint-layering.mjs", import.meta.url));

/** An import line built at run time, so this file's own source holds none for the rule to flag. */
function imp(name: string, from: string): string {
  return `import { ${name} } from ${JSON.stringify(from)};\n`;
}

function lint(files: Record<string, string>): { status: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), "xenon-lint-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const r = spawnSync(process.execPath, [RULE], { env: { ...process.env, XENON_LINT_ROOT: root }, encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("imports that follow the layering pass", () => {
  const r = lint({
    "packages/hw/src/index.ts": `export const x = 1;\n${imp("y", "./y.js")}`,
    "packages/hypervisor/src/index.ts": imp("x", "@xenon/hw"),
    "packages/toolstack/src/index.ts": imp("x", "@xenon/hw") + imp("h", "@xenon/hypervisor"),
  });
  assert.equal(r.status, 0, r.out);
});

test("each kind of violation is refused with its reason", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { "packages/hw/src/a.ts": imp("h", "@xenon/hypervisor") },
      /hw may not import @xenon\/hypervisor: hw is emulated hardware/,
    ],
    [{ "packages/hypervisor/src/a.ts": imp("t", "@xenon/toolstack") }, /hypervisor may not import @xenon\/toolstack/],
    [
      { "packages/backends/src/a.ts": imp("m", "@xenon/hw") },
      /backends may not import @xenon\/hw: backends run in driver domains/,
    ],
    [
      { "packages/toolstack/src/a.ts": imp("p", "@xenon/hypervisor/src/p2m/p2m.js") },
      /reaches inside @xenon\/hypervisor/,
    ],
    [{ "packages/hw/src/a.ts": imp("p", "../../hypervisor/src/x.js") }, /leaves package hw/],
    [
      { "packages/guests/src/a.ts": `const m = await ${"import"}(${JSON.stringify("@xenon/hw")});\n` },
      /guests may not import @xenon\/hw/,
    ],
  ];
  for (const [files, message] of cases) {
    const r = lint(files);
    assert.equal(r.status, 1, `accepted: ${JSON.stringify(files)}`);
    assert.match(r.out, message);
  }
});
