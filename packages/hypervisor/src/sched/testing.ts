/** Small helpers shared by the sched tests: scenario set-up and share assertions. */
import assert from "node:assert/strict";
import { Errno } from "../public/errno.js";
import { Cpupools, type SchedOptions } from "./cpupool.js";
import { SchedSim, type SimOptions, type Workload } from "./sim.js";
import type { Pcpu, SchedName, SchedParamsUpdate } from "./types.js";

export const MS = 1_000_000;
export const SEC = 1_000_000_000;

export interface DomSpec {
  readonly domid: number;
  readonly vcpus?: number;
  readonly params?: SchedParamsUpdate;
  readonly load?: Workload;
}

/** One pool (pool 0) holding every pCPU, the given domains, and a simulator with their workloads. */
export function scenario(
  sched: SchedName,
  cpus: readonly Pcpu[],
  doms: readonly DomSpec[],
  opts: SchedOptions = {},
  simOpts: SimOptions = {},
): { pools: Cpupools; sim: SchedSim } {
  const pools = new Cpupools({ pcpus: cpus, sched, schedOptions: opts });
  for (const d of doms) {
    assert.equal(pools.addDomain(d.domid, d.vcpus ?? 1, 0, 0), 0);
    if (d.params) assert.equal(pools.setDomainParams(d.domid, d.params, 0), 0);
  }
  const sim = new SchedSim(pools, simOpts);
  for (const d of doms) sim.setDomainWorkload(d.domid, d.load ?? { kind: "busy" });
  return { pools, sim };
}

/** Shares of total work of each domain, in the order given. */
export function workShares(sim: SchedSim, domids: readonly number[]): number[] {
  const w = domids.map((d) => sim.domainWork(d));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

/** |actual/expected - 1| <= rel. */
export function assertWithin(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual / expected - 1);
  assert.ok(err <= rel, `${what}: got ${actual.toFixed(4)}, expected ${expected.toFixed(4)} ±${rel * 100}%`);
}

export const fmt = (xs: readonly number[]): string => xs.map((x) => x.toFixed(4)).join(" : ");

/**
 * At time t, run a control operation; while it answers -EAGAIN (a pCPU or vCPU must first be
 * let go), retry 1 µs later, as a toolstack would. It must end in 0.
 */
export function retryAt(sim: SchedSim, t: number, op: (now: number) => number): void {
  sim.at(t, (s) => {
    const rc = op(s.now);
    if (rc === -Errno.EAGAIN) retryAt(sim, s.now + 1000, op);
    else assert.equal(rc, 0);
  });
}
