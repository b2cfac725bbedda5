/**
 * `pnpm bench blk [--json] [--reps N] [--total KiB] [--modes thread,process] [--cases a,b] [--guest-args "k=v ..."]
 * [--trace]`:
 * virtio-blk from a
 * guest (blkstress.elf in bench mode) through a driver domain, grants only:
 *  - sequential read and write, 32 KiB requests, MB/s at queue depth 1 and 32;
 *  - random 4 KiB reads and writes, IOPS at queue depth 1 and 32;
 *  - sequential read with 256 KiB requests at queue depth 1 and 4 (per-request cost amortised);
 *  - each in thread mode (grant map, shared ioreq pages) and process mode (grant copy, relayed
 *    ioreqs over the child's pipes);
 *  - anchor in the same run: the host reading/writing the same file with the same request size
 *    (readSync/writeSync at the same offsets, page cache warm, no fsync — as the backend).
 * Medians of --reps runs; the ratio is guest / native. Goal (issue 5): >= 0.9 of native for
 * sequential reads.
 */

import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DriverDomainMode } from "@xenon/backends";
import { enableIoTrace } from "@xenon/hypervisor";
import { benchCli, median } from "../helpers/bench.js";
import { readTrace, traceReport } from "../helpers/io_trace_report.js";
import { runVirtioGuests } from "../helpers/virtio.js";

const cli = benchCli();
const reps = cli.num("--reps", 3);
const totalKiB = cli.num("--total", 4096);
const modesArg = process.argv.includes("--modes")
  ? process.argv[process.argv.indexOf("--modes") + 1]!
  : "thread,process";
const modes = modesArg.split(",") as DriverDomainMode[];
const arg = (name: string): string | undefined =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
/** --guest-args "k=v ...": more boot arguments for blkstress (e.g. the frontend's indirect_desc=0). */
const guestArgs = arg("--guest-args") ?? "";
/** --cases a,b: only the cases of those names (e.g. seqread-qd1). */
const only = arg("--cases")?.split(",");
/**
 * --trace: record the I/O path's timeline (XENON_IO_TRACE) and print, after each guest run, where
 * a request's time went (helpers/io_trace_report.ts; best with --reps 1 and a QD1 case). Tracing
 * costs a few µs per event: traced figures are a little lower.
 */
const traceDir = process.argv.includes("--trace") ? mkdtempSync(join(tmpdir(), "xenon-iotrace-")) : null;
if (traceDir !== null) enableIoTrace(traceDir);
const DISK = 16 << 20;

interface Case {
  readonly name: string;
  readonly mode: "seqread" | "seqwrite" | "randread" | "randwrite";
  readonly size: number;
  readonly depth: number;
  /** MB/s or IOPS. */
  readonly unit: "MB/s" | "IOPS";
}
const CASES: Case[] = [];
for (const depth of [1, 32]) {
  CASES.push({ name: `seqread-qd${depth}`, mode: "seqread", size: 32 << 10, depth, unit: "MB/s" });
  CASES.push({ name: `seqwrite-qd${depth}`, mode: "seqwrite", size: 32 << 10, depth, unit: "MB/s" });
  CASES.push({ name: `randread4k-qd${depth}`, mode: "randread", size: 4096, depth, unit: "IOPS" });
  CASES.push({ name: `randwrite4k-qd${depth}`, mode: "randwrite", size: 4096, depth, unit: "IOPS" });
}
// Larger requests: how the per-request cost amortises (the guest's bench buffer is 1 MiB).
for (const depth of [1, 4])
  CASES.push({ name: `seqread256k-qd${depth}`, mode: "seqread", size: 256 << 10, depth, unit: "MB/s" });

const rate = (c: Case, bytes: number, us: number) => (c.unit === "MB/s" ? bytes / us : (bytes / c.size / us) * 1e6);

/** The same pattern on the host: same file, request size and offsets (xorshift as the guest's). */
function native(path: string, c: Case): number {
  const fd = openSync(path, "r+");
  const buf = Buffer.alloc(c.size, 0x5a);
  const n = Math.floor((totalKiB * 1024) / c.size);
  const span = Math.floor(DISK / c.size);
  let x = 0x12345678;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    let at = i % span;
    if (c.mode.startsWith("rand")) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      at = x % span;
    }
    if (c.mode.endsWith("write")) writeSync(fd, buf, 0, c.size, at * c.size);
    else readSync(fd, buf, 0, c.size, at * c.size);
  }
  const us = (performance.now() - t0) * 1000;
  closeSync(fd);
  return rate(c, n * c.size, us);
}

async function guest(path: string, c: Case, mode: DriverDomainMode): Promise<number> {
  const r = await runVirtioGuests(
    [
      {
        image: "blkstress",
        bootargs: `mode=${c.mode} depth=${c.depth} size=${c.size} total=${totalKiB} ${guestArgs}`.trim(),
        devices: [{ kind: "blk", path }],
      },
    ],
    { mode, timeoutMs: 300_000 },
  );
  const m = /^blkstress: bench \S+ depth \d+ size \d+ requests (\d+) us (\d+) errors (\d+)$/m.exec(r.outs[0]!);
  if (m === null || m[3] !== "0") throw new Error(`blkstress bench failed:\n${r.outs[0]}\n${r.log.join("\n")}`);
  if (traceDir !== null) for (const l of traceReport(readTrace(traceDir), Number(m[1]))) cli.log(`  ${l}`);
  return rate(c, Number(m[1]) * c.size, Number(m[2]));
}

const dir = mkdtempSync(join(tmpdir(), "xenon-bench-blk-"));
const path = join(dir, "disk.img");
writeFileSync(path, randomBytes(DISK));
const results: Record<string, Record<string, { median: number; native: number; ratio: number; unit: string }>> = {};
try {
  for (const c of CASES) {
    if (only !== undefined && !only.includes(c.name)) continue;
    const nat = median(Array.from({ length: reps }, () => native(path, c)));
    for (const mode of modes) {
      const xs: number[] = [];
      for (let i = 0; i < reps; i++) xs.push(await guest(path, c, mode));
      const med = median(xs);
      results[mode] ??= {};
      results[mode][c.name] = { median: med, native: nat, ratio: med / nat, unit: c.unit };
      cli.log(
        `${mode.padEnd(7)} ${c.name.padEnd(16)} ${med.toFixed(c.unit === "IOPS" ? 0 : 2).padStart(9)} ${c.unit.padEnd(4)}  native ${nat.toFixed(c.unit === "IOPS" ? 0 : 1).padStart(9)}  ratio ${(med / nat).toFixed(4)}`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (traceDir !== null) rmSync(traceDir, { recursive: true, force: true });
}
if (cli.json) process.stdout.write(`${JSON.stringify({ bench: "blk", reps, totalKiB, results })}\n`);
