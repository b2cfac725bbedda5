#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js and tests/dist/**/*.test.js) with
// node's test runner. Node 20's --test takes no globs, so the file list is gathered here.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const roots = [
  ...readdirSync(join(root, "packages")).map((p) => join(root, "packages", p, "dist")),
  join(root, "tests", "dist"),
];
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".test.js")) files.push(p);
  }
};
for (const r of roots) if (existsSync(r)) walk(r);
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error("test: no test files found (did the build run?)");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...chosen], { stdio: "inherit" });
process.exit(r.status ?? 1);
