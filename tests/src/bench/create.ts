/**
 * `pnpm bench create [--json] [--runs N] [--domains N]`: domain creation.
 *  1. create -> first console line: a fresh domain running hello.elf under the core (domain
 *     create, RAM populate, ELF + device tree load, vCPU onto a pCPU worker, run to its first
 *     console_io), median of N; side by side with the anchor measured in the same run: a
 *     qemu-riscv32 process from spawn to its first output line (Linux-ABI hello).
 *  2. N domains at once: host memory per domain beyond its guest RAM (JS heap + array buffers,
 *     P2M pool, shared_info, grant frames, vCPU state), measured around creating and running them.
 * Goal (issue 3): create -> first line <= 5 ms.
 */
import { readFileSync } from "node:fs";
import { guestImagePath, linuxProgramPath } from "@xenon/guests";
import { createVcpuState, FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  buildDomainMemory,
  buildGuestFdt,
  createScheduler,
  Hypervisor,
  initBootVcpuState,
  Machine,
  p2mPoolPagesFor,
} from "@xenon/hypervisor";
import { benchCli, median } from "../helpers/bench.js";
import { runProcess } from "../helpers/run.js";

const cli = benchCli();
const json = cli.json;
const runs = cli.num("--runs", 15);
const many = cli.num("--domains", 200);
const log = cli.log;

const hello = readFileSync(guestImagePath("hello"));
const memory = new MachineMemory({ bytes: 4 * 2 ** 30 });
const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
const machine = new Machine({
  hv,
  timeMode: "host",
  pools: [
    {
      id: 0,
      name: "Pool-0",
      scheduler: createScheduler("credit2"),
      pcpus: [
        { id: 0, cls: "big", speed: 1024 },
        { id: 1, cls: "big", speed: 1024 },
      ],
    },
  ],
});
const RAM = 1 << 20;
let serial = 0;

/** Creates, builds and starts one hello domain; resolves when its first console line arrives. */
function startHello(onLine?: () => void): Promise<number> {
  const t0 = performance.now();
  const maxPages = RAM / 4096 + 16;
  const d = hv.domains.create({
    name: `h${serial++}`,
    maxVcpus: 1,
    maxPages,
    p2mPoolPages: p2mPoolPagesFor(maxPages),
    flags: { isConsole: true },
  });
  if (typeof d === "number") throw new Error(`create failed ${d}`);
  const first = new Promise<number>((resolve) => {
    let done = false;
    d.console.setSink(() => {
      if (!done) {
        done = true;
        resolve(performance.now() - t0);
        onLine?.();
      }
    });
  });
  const placement = buildDomainMemory(
    d,
    hello,
    RAM,
    buildGuestFdt({ domid: d.domid, name: d.name, vcpus: 1, ramBytes: RAM }),
  );
  const st = createVcpuState();
  initBootVcpuState(st, placement, 0);
  machine.addDomain(d, 0, st);
  return first;
}

machine.start();
// Warm up the workers and the JIT.
for (let i = 0; i < 5; i++) await startHello();

const xenonMs: number[] = [];
const qemuMs: number[] = [];
const helloLinux = linuxProgramPath("exitcode", "rv32imac");
for (let i = 0; i < runs; i++) {
  xenonMs.push(await startHello());
  const q = await runProcess("qemu-riscv32", [helloLinux]);
  qemuMs.push(q.ms);
}
log(
  `create -> first console line: xenon median ${median(xenonMs).toFixed(2)} ms; qemu-riscv32 spawn -> exit median ${median(qemuMs).toFixed(2)} ms`,
);

// Many at once: memory beyond guest RAM.
await new Promise((r) => setTimeout(r, 200));
globalThis.gc?.();
const before = process.memoryUsage();
const framesBefore = hv.allocator.allocatedFrames;
const t0 = performance.now();
let lines = 0;
const firsts: Promise<number>[] = [];
for (let i = 0; i < many; i++) firsts.push(startHello(() => lines++));
const framesDuring = hv.allocator.allocatedFrames;
const after = process.memoryUsage();
await Promise.all(firsts);
const allMs = performance.now() - t0;
const frames = framesDuring - framesBefore;
const guestRamFrames = many * (RAM / 4096);
const hostFramesBeyond = (frames - guestRamFrames) / many;
const jsBytes = (after.heapUsed + after.external - before.heapUsed - before.external) / many;
log(
  `${many} domains at once: all printed within ${allMs.toFixed(0)} ms; per domain beyond guest RAM: ${hostFramesBeyond.toFixed(1)} host frames (${((hostFramesBeyond * 4096) / 1024).toFixed(0)} KiB: P2M pool, shared_info, grant frames) + ${(jsBytes / 1024).toFixed(0)} KiB of JS heap/external`,
);

await machine.close();
const result = {
  bench: "create",
  runs,
  createToFirstLineMs: Number(median(xenonMs).toFixed(3)),
  anchorQemuSpawnToExitMs: Number(median(qemuMs).toFixed(3)),
  ratio: Number((median(xenonMs) / median(qemuMs)).toFixed(3)),
  goalMs: 5,
  domainsAtOnce: many,
  allPrintedMs: Number(allMs.toFixed(1)),
  hostKiBPerDomainBeyondRam: Number(((hostFramesBeyond * 4096) / 1024).toFixed(1)),
  jsKiBPerDomain: Number((jsBytes / 1024).toFixed(1)),
};
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
else
  log(`create: ${result.createToFirstLineMs} ms (goal <= 5 ms), ratio to qemu-riscv32 process start ${result.ratio}`);
process.exit(0);
