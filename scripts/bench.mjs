#!/usr/bin/env node
// `pnpm bench <name> [--json] [args]`: builds (output to stderr, so --json keeps stdout clean),
// then runs tests/dist/bench/<name>.js. Each bench compares against its anchor side by side in
// one run and prints the ratio; --json prints one JSON object.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const benchDir = join(root, "tests", "dist", "bench");
const [name, ...rest] = process.argv.slice(2);
const build = spawnSync("pnpm", ["build"], { cwd: root, stdio: ["ignore", 2, 2] });
if (build.status !== 0) process.exit(build.status ?? 1);
const available = existsSync(benchDir)
  ? readdirSync(benchDir)
      .filter((f) => f.endsWith(".js"))
      .map((f) => f.slice(0, -3))
  : [];
if (!name || !available.includes(name)) {
  console.error(`usage: pnpm bench <${available.join("|")}> [--json]`);
  process.exit(2);
}
const r = spawnSync(process.execPath, [join(benchDir, `${name}.js`), ...rest], { stdio: "inherit" });
process.exit(r.status ?? 1);
