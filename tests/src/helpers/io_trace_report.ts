/**
 * Reads the timeline XENON_IO_TRACE wrote (packages/hypervisor/src/trace/io_trace.ts) and says
 * where a virtio request's time goes:
 *  - a typical request: the run is cut at each QueueNotify exit of the guest (`pcpu.mmio 80`); in
 *    every cut each event gets its offset from the cut's start (the n-th event of a tag in a cut
 *    is `tag#n`), and the median offset of every event seen in most cuts is printed in order, with
 *    the step from the one before. Meaningful at queue depth 1, where cuts are requests.
 *  - port round trips per op: driver domain call -> the core takes it (`to core`: the message
 *    crossing plus the core's queue), -> the reply arrives (`back`: the op and the way back).
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

interface Ev {
  readonly t: number;
  readonly tag: string;
  readonly v: number;
}

export function readTrace(dir: string, remove = true): Ev[] {
  const out: Ev[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".trace")) continue;
    for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
      if (line === "") continue;
      const [t, tag, v] = line.split(" ");
      out.push({ t: Number(t), tag: tag!, v: Number(v) });
    }
    if (remove) rmSync(join(dir, f));
  }
  return out.sort((a, b) => a.t - b.t);
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[s.length >> 1]!;
};

/** The report as lines; `requests` is what the guest completed (for per-request counts). */
export function traceReport(evs: readonly Ev[], requests: number): string[] {
  const lines: string[] = [];
  // Per-request timeline between QueueNotify exits (skip the first and last cut: set-up, tear-down).
  const cuts: number[] = [];
  for (const [i, e] of evs.entries()) if (e.tag === "pcpu.mmio" && e.v === 0x50) cuts.push(i);
  const offsets = new Map<string, number[]>();
  const lengths: number[] = [];
  for (let k = 1; k + 1 < cuts.length; k++) {
    const from = cuts[k]!;
    const to = cuts[k + 1]!;
    const t0 = evs[from]!.t;
    lengths.push(evs[to]!.t - t0);
    const seen = new Map<string, number>();
    for (let i = from; i < to; i++) {
      const e = evs[i]!;
      const n = (seen.get(e.tag) ?? 0) + 1;
      seen.set(e.tag, n);
      const key = `${e.tag}${e.tag === "pcpu.mmio" || e.tag.startsWith("dd.ioreq") || e.tag.startsWith("core.ioreq") ? `(0x${e.v.toString(16)})` : ""}#${n}`;
      let xs = offsets.get(key);
      if (xs === undefined) {
        xs = [];
        offsets.set(key, xs);
      }
      xs.push(e.t - t0);
    }
  }
  const cutsUsed = lengths.length;
  if (cutsUsed > 0) {
    lines.push(`typical request (${cutsUsed} cuts between QueueNotify exits, median ${med(lengths).toFixed(0)} µs):`);
    const rows = [...offsets.entries()]
      .filter(([, xs]) => xs.length >= cutsUsed * 0.6)
      .map(([k, xs]) => ({ k, at: med(xs), n: xs.length }))
      .sort((a, b) => a.at - b.at);
    let prev = 0;
    for (const r of rows) {
      lines.push(`  ${r.at.toFixed(0).padStart(6)} µs  +${(r.at - prev).toFixed(0).padStart(5)}  ${r.k}`);
      prev = r.at;
    }
    lines.push(
      `  ${med(lengths).toFixed(0).padStart(6)} µs  +${(med(lengths) - prev).toFixed(0).padStart(5)}  next QueueNotify`,
    );
  }
  // Port round trips by op.
  const calls = new Map<number, { op: string; t: number }>();
  const taken = new Map<number, number>();
  const served = new Map<number, number>();
  const perOp = new Map<string, { to: number[]; core: number[]; back: number[] }>();
  for (const e of evs) {
    if (e.tag.startsWith("dd.call.")) calls.set(e.v, { op: e.tag.slice(8), t: e.t });
    else if (e.tag.startsWith("core.op.")) taken.set(e.v, e.t);
    else if (e.tag === "core.opdone") served.set(e.v, e.t);
    else if (e.tag === "dd.reply") {
      const c = calls.get(e.v);
      const at = taken.get(e.v);
      const done = served.get(e.v);
      if (c === undefined || at === undefined || done === undefined) continue;
      let s = perOp.get(c.op);
      if (s === undefined) {
        s = { to: [], core: [], back: [] };
        perOp.set(c.op, s);
      }
      s.to.push(at - c.t);
      s.core.push(done - at);
      s.back.push(e.t - done);
    }
  }
  if (perOp.size > 0) {
    lines.push("port round trips (median µs): op, calls per request, to core, in core, back, total");
    for (const [op, s] of [...perOp.entries()].sort((a, b) => b[1].to.length - a[1].to.length)) {
      const tot = s.to.map((x, i) => x + s.core[i]! + s.back[i]!);
      const f = (xs: number[]) => med(xs).toFixed(0).padStart(6);
      lines.push(
        `  ${op.padEnd(24)} ${(s.to.length / Math.max(1, requests)).toFixed(2).padStart(6)} ${f(s.to)} ${f(s.core)} ${f(s.back)} ${f(tot)}`,
      );
    }
  }
  // Counts of the crossings per request.
  const count = (p: (e: Ev) => boolean) => evs.filter(p).length / Math.max(1, requests);
  lines.push(
    `per request: ${count((e) => e.tag === "pcpu.exit").toFixed(2)} vCPU exits, ` +
      `${count((e) => e.tag === "core.upcall.port").toFixed(2)} driver-domain upcalls, ` +
      `${count((e) => e.tag === "dd.woke").toFixed(2)} driver-domain wake-ups, ` +
      `${count((e) => e.tag === "core.upcall.vcpu").toFixed(2)} guest upcalls, ` +
      `${count((e) => e.tag === "dd.irq").toFixed(2)} interrupts raised, ` +
      `${count((e) => e.tag.startsWith("dd.ioreq.read")).toFixed(2)} register reads`,
  );
  return lines;
}
