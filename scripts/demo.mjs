#!/usr/bin/env node
// `pnpm demo` (after the build): a small system under the core, until the boot issue brings the
// device-tree demo — hello.elf, two domains bouncing an event over a static channel, and two
// sharing a page through the grant table. Each console line is prefixed by its domain's name.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const img = (name) => fileURLToPath(new URL(`../packages/guests/dist/images/${name}.elf`, import.meta.url));
const xenon = fileURLToPath(new URL("../packages/toolstack/bin/xenon.js", import.meta.url));
const args = [
  "run",
  "--stats",
  "--evtchn",
  "2:5-3:5",
  "--evtchn",
  "4:7-5:7",
  img("hello"),
  `${img("pingpong")},name=ping,role=ping,peer=3,port=5,rounds=100`,
  `${img("pingpong")},name=pong,role=pong,peer=2,port=5,rounds=100`,
  `${img("grantshare")},name=granter,role=granter,peer=5,port=7,gref=8`,
  `${img("grantshare")},name=mapper,role=mapper,peer=4,port=7,gref=8`,
];
console.log(`$ xenon ${args.map((a) => a.replace(/^.*\/packages\/guests\/dist\/images\//, "")).join(" ")}`);
const r = spawnSync(process.execPath, [xenon, ...args], { stdio: "inherit" });
process.exit(r.status ?? 1);
