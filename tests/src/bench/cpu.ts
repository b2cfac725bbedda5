/**
 * `pnpm bench cpu [--json] [--runs N]`: the CPU-bound guest `cpubench` (Linux-ABI build, rv32imac)
 * under Xenon's interpreter and under qemu-riscv32 (TCG), alternated in one run; medians.
 *
 * Xenon runs in-process (no process start-up in its figure). qemu's figure is its time per
 * iteration from two iteration counts (the slope), so its process start-up cancels out. Both
 * sides run the same ELF, and their checksums must agree.
 */
import { linuxProgramPath } from "@xenon/guests";
import { runLinuxUser } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";
import { runProcess } from "../helpers/run.js";

const cli = benchCli();
const json = cli.json;
const runs = cli.num("--runs", 5);
const elfPath = linuxProgramPath("cpubench", "rv32imac");
const { readFileSync } = await import("node:fs");
const elf = readFileSync(elfPath);

const log = cli.log;

function xenon(iterations: number): { ms: number; instructions: number; out: string } {
  const chunks: Buffer[] = [];
  const t0 = performance.now();
  const r = runLinuxUser(elf, { argv: [elfPath, String(iterations)], write: (_fd, b) => chunks.push(Buffer.from(b)) });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`cpubench under xenon exited ${r.status}: ${r.fault ?? ""}`);
  return { ms, instructions: r.instructions, out: Buffer.concat(chunks).toString() };
}

async function qemu(iterations: number): Promise<{ ms: number; out: string }> {
  const r = await runProcess("qemu-riscv32", [elfPath, String(iterations)]);
  if (r.status !== 0) throw new Error(`cpubench under qemu exited ${r.status}: ${r.stderr}`);
  return { ms: r.ms, out: r.stdout.toString() };
}

// Calibrate: instructions per iteration (exact, from instret), then speeds after a warm-up so the
// JIT-compiled interpreter, not the cold one, sets the iteration counts.
const small = xenon(2);
const one = xenon(3);
const perIter = one.instructions - small.instructions;
const fixed = small.instructions - 2 * perIter;
xenon(500);
const warm = xenon(2000);
const estMips = warm.instructions / warm.ms / 1000;
const nx = Math.max(100, Math.round((1500 * estMips * 1000) / perIter)); // ~1.5 s under xenon
const q0 = await qemu(nx * 4);
const qemuEstMsPerIter = q0.ms / (nx * 4);
const nq = Math.max(nx, Math.round(600 / qemuEstMsPerIter / 4) * 4); // ~0.6 s under qemu
log(`cpubench: ${perIter} instructions per iteration; xenon runs ${nx} iterations, qemu ${nq} and ${nq / 4}`);

// Same ELF, same input: both must print the same checksum.
const [cx, cq] = [xenon(nx), await qemu(nx)];
if (cx.out !== cq.out) throw new Error(`checksums differ:\nxenon: ${cx.out}\nqemu: ${cq.out}`);

const xenonMips: number[] = [];
const qemuMips: number[] = [];
for (let i = 0; i < runs; i++) {
  const x = xenon(nx);
  xenonMips.push(x.instructions / x.ms / 1000);
  const big = await qemu(nq);
  const lil = await qemu(nq / 4);
  const msPerIter = (big.ms - lil.ms) / (nq - nq / 4);
  qemuMips.push(perIter / msPerIter / 1000);
  log(`  run ${i + 1}: xenon ${xenonMips[i]!.toFixed(1)} MIPS, qemu ${qemuMips[i]!.toFixed(0)} MIPS`);
}
const xm = median(xenonMips);
const qm = median(qemuMips);
const result = {
  bench: "cpu",
  guest: "cpubench.rv32imac.elf",
  instructionsPerIteration: perIter,
  startupInstructions: fixed,
  runs,
  xenonMips: Number(xm.toFixed(2)),
  qemuMips: Number(qm.toFixed(1)),
  ratio: Number((xm / qm).toFixed(4)),
  target: 0.02,
};
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
else
  log(
    `cpu: xenon ${result.xenonMips} MIPS, qemu-riscv32 ${result.qemuMips} MIPS, ratio ${result.ratio} (target >= ${result.target}) [medians of ${runs}]`,
  );
