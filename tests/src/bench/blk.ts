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
 *
 * Where the time goes (`--trace --reps 1 --cases randread4k-qd1`; 2 shared cores, load 4-6;
 * full figures and history in packages/backends/README.md). Native is 4-8 µs per request from the
 * page cache. A guest request is a chain of wake-ups across threads: the guest's pCPU worker, the
 * core's main thread, the driver domain's worker (or child process). Each crossing costs 50-200
 * µs one way here (57 µs round trip quiet, ARCHITECTURE.md) while the work at each end is
 * 10-60 µs: the threads are mostly idle, waiting to be scheduled. A port round trip splits into
 * "to core" 60-130 µs, "in core" 20-30 µs (the op, packing, postMessage), "back" 30-110 µs. The
 * core's thread runs no guest code (vCPU slices run on the pCPU workers; the core awaits their
 * exits), so it answers at once when it gets a CPU; the driver domain waits with
 * Atomics.waitAsync, resolved through its event loop.
 *  - Before (thread, QD1, ~1.7 ms per 4 KiB request; 32 KiB ~2.5 ms): notify exit reaches the
 *    core ~100 µs, driver domain woken ~90, indirect-table map round trip ~360, chain map ~300,
 *    pread ~30, unmap round trip ~380, evtchnSend to the core ~120, vCPU running again ~150, guest
 *    CPU to the next notify ~180; beside it a synchronous STATUS read per wait (~430 µs, exit to
 *    vCPU run) whose answer often came after the data. 3.9 vCPU exits, 2.1 driver-domain
 *    upcalls, 1.9 sends, 0.9 register reads per request.
 *  - Now (~0.6-0.9 ms): notify exit -> core ~70-100 µs -> driver domain ~50-150, one chain map
 *    round trip ~150-250, pread ~20, one message (unmaps, used.idx store, send if used_event
 *    asks) -> core ~50-120 -> guest woken on its worker ~50, guest CPU ~180. 0.6 vCPU exits (the
 *    device takes new chains without a kick while it works), 0.4 upcalls, no register read.
 *  - Process mode adds a pipe crossing per hypercall (round trips 250-600 µs; a 128-segment copy
 *    reply of 512 KiB took ~17 ms) and relays ioreqs (ioreqFetch); ~5 serial round trips per
 *    request (were ~12, plus evtchnTakePending per wake-up), a read's data crossing once.
 *  - Left: the notify still goes guest -> core -> driver domain (the posted write could be handed
 *    from the pCPU worker straight to the driver domain's buffered ioreq page); one map round trip
 *    per request (a persistent mapping would need the guest's cooperation: virtio has no
 *    persistent-grant protocol, and a guest ends each request's grants); guest CPU. >= 0.9 of
 *    native is out of reach by construction: one crossing costs more than a native read; large
 *    requests amortise best (256 KiB: ratio ~0.01).
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
