#!/usr/bin/env node
// `pnpm demo` (after the build): compiles demo/system.dts with dtc and boots it dom0less with
// `xenon boot --serve --until-done` — cpupools on big and LITTLE pCPUs; a driver domain serving
// kvstore's disk and vif, netping's vif (netping queries kvstore over the host switch) and
// vconsole's virtio-console; hello.elf; a ping-pong pair on a static event channel; a
// grant-sharing pair; a static shared-memory pair. Each console line is prefixed by its domain's
// name; once the host is up, the real `xl list` and `xl vcpu-list` show it and `xl shutdown`
// stops vconsole (a service running until stopped); the demo exits (status 0) when every guest
// has powered off.
//
//   node scripts/demo.mjs [--short] [--serve]
//     --short   every `rounds=N` of the tree lowered (the test suite's run)
//     --serve   keep the host up for xl instead (prints XENON_HOST=...; Ctrl-C stops it)
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const args = new Set(process.argv.slice(2).filter((a) => a !== "--"));
for (const a of args)
  if (a !== "--short" && a !== "--serve") {
    process.stderr.write(`demo: unknown option ${a} (--short, --serve)\n`);
    process.exit(2);
  }
const short = args.has("--short");
const serve = args.has("--serve");

const dir = mkdtempSync(join(tmpdir(), "xenon-demo-"));
let dts = readFileSync(fileURLToPath(new URL("../demo/system.dts", import.meta.url)), "utf8");
if (short) dts = dts.replace(/rounds=(\d+)/g, (_, n) => `rounds=${Math.min(Number(n), 10)}`);
const src = join(dir, "system.dts");
const dtb = join(dir, "system.dtb");
writeFileSync(src, dts);
// The driver domain's disk, beside the tree (as the tree's xenon,path says).
writeFileSync(join(dir, "disk.img"), new Uint8Array(1 << 20));
const bin = (name) => fileURLToPath(new URL(`../packages/toolstack/bin/${name}.js`, import.meta.url));

console.log("$ dtc -I dts -O dtb -o system.dtb demo/system.dts");
const dtc = spawnSync("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", dtb, src], { stdio: "inherit" });
if (dtc.status !== 0) process.exit(dtc.status ?? 1);

const bootArgs = ["boot", "--serve", ...(serve ? [] : ["--until-done"]), dtb];
console.log(`$ xenon ${bootArgs.slice(0, -1).join(" ")} system.dtb`);
const host = spawn(process.execPath, [bin("xenon"), ...bootArgs], { stdio: ["ignore", "pipe", "inherit"] });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => host.kill(sig));

let url = null;
let partial = "";
host.stdout.on("data", (chunk) => {
  const lines = (partial + chunk.toString("latin1")).split("\n");
  partial = lines.pop() ?? "";
  for (const line of lines) {
    const m = /^XENON_HOST=(.*)$/.exec(line);
    if (m !== null && url === null) {
      url = m[1];
      if (serve) {
        console.log(line);
        console.log(`# the host is up: in another shell, XENON_HOST=${url} pnpm exec xl list (Ctrl-C here stops it)`);
      } else showXl(url);
      continue;
    }
    if (/^XENSTORED_PATH=/.test(line) && !serve) continue;
    console.log(line);
  }
});

/**
 * The real xl against the host, each command's output printed as one block; last, the service
 * domain (vconsole with lines=0 runs until stopped) is shut down.
 */
async function showXl(hostUrl) {
  for (const verb of [["list"], ["vcpu-list"], ["shutdown", "console_user"]]) {
    const r = await new Promise((resolve) => {
      const out = [];
      const xl = spawn(process.execPath, [bin("xl"), "-H", hostUrl, ...verb], { stdio: ["ignore", "pipe", "pipe"] });
      xl.stdout.on("data", (b) => out.push(b));
      xl.stderr.on("data", (b) => out.push(b));
      xl.on("close", (status) => resolve({ status, text: Buffer.concat(out).toString() }));
    });
    process.stdout.write(`$ xl ${verb.join(" ")}\n${r.text}`);
    if (r.status !== 0) process.exitCode = 1;
  }
}

host.on("close", (status, signal) => {
  if (partial !== "") console.log(partial);
  // The host's status first (a guest that did not power off), then xl's, then a host that never came up.
  const hostStatus = status ?? (signal === "SIGINT" || signal === "SIGTERM" ? 0 : 1);
  if (hostStatus !== 0) process.exitCode = hostStatus;
  else if (url === null) process.exitCode = 1;
});
