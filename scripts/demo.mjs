#!/usr/bin/env node
// `pnpm demo` (after the build): compiles demo/system.dts with dtc and boots it dom0less with
// `xenon boot` — cpupools on big and LITTLE pCPUs, hello.elf, a ping-pong pair on a static event
// channel and a grant-sharing pair. Each console line is prefixed by its domain's name.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const dts = fileURLToPath(new URL("../demo/system.dts", import.meta.url));
const dtb = join(mkdtempSync(join(tmpdir(), "xenon-demo-")), "system.dtb");
const xenon = fileURLToPath(new URL("../packages/toolstack/bin/xenon.js", import.meta.url));
console.log("$ dtc -I dts -O dtb -o system.dtb demo/system.dts");
const dtc = spawnSync("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", dtb, dts], { stdio: "inherit" });
if (dtc.status !== 0) process.exit(dtc.status ?? 1);
console.log("$ xenon boot --stats system.dtb");
const r = spawnSync(process.execPath, [xenon, "boot", "--stats", dtb], { stdio: "inherit" });
process.exit(r.status ?? 1);
