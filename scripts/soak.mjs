#!/usr/bin/env node
// `pnpm soak [--minutes N] [--seed S]` — opt-in, long: hostile.elf with a new PRNG seed each round,
// beside a ping-pong pair and a grant-sharing pair, under the core on two pCPUs (one round in
// three in deterministic mode). Every domain must power off; the first round that breaks stops the
// soak with its seed, so it can be replayed (`xenon run ... hostile.elf,seed=S`).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { minutes: { type: "string", default: "10" }, seed: { type: "string", default: "1" } },
});
const until = Date.now() + Number(values.minutes) * 60_000;
const img = (name) => fileURLToPath(new URL(`../packages/guests/dist/images/${name}.elf`, import.meta.url));
const xenon = fileURLToPath(new URL("../packages/toolstack/bin/xenon.js", import.meta.url));
let seed = Number(values.seed);
let rounds = 0;
while (Date.now() < until) {
  const deterministic = rounds % 3 === 2;
  const args = [
    xenon,
    "run",
    "--timeout",
    "120",
    "--evtchn",
    "2:5-3:5",
    "--evtchn",
    "4:7-5:7",
    ...(deterministic ? ["--deterministic", "--pcpus", "1"] : []),
    `${img("hostile")},seed=${seed},iters=4`,
    `${img("pingpong")},name=ping,role=ping,peer=3,port=5,rounds=300`,
    `${img("pingpong")},name=pong,role=pong,peer=2,port=5,rounds=300`,
    `${img("grantshare")},name=granter,role=granter,peer=5,port=7,gref=8`,
    `${img("grantshare")},name=mapper,role=mapper,peer=4,port=7,gref=8`,
  ];
  const r = spawnSync(process.execPath, args, { encoding: "utf8" });
  rounds++;
  const survived = /hostile: survived (\d+) calls/.exec(r.stdout)?.[1] ?? "?";
  console.log(
    `soak: round ${rounds} seed ${seed}${deterministic ? " (deterministic)" : ""}: status ${r.status}, hostile survived ${survived} calls`,
  );
  if (r.status !== 0) {
    console.error(r.stdout.split("\n").slice(-20).join("\n"));
    console.error(r.stderr);
    console.log(`0 passed, 1 failed`);
    process.exit(1);
  }
  seed++;
}
console.log(`${rounds} passed, 0 failed`);
