import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PcpuSlot, PickResult } from "./base.js";
import { CpuMask } from "./cpumask.js";
import { CPUPOOL_PAR_ANY, Cpupools } from "./cpupool.js";
import { NullScheduler } from "./null.js";
import { SchedSim } from "./sim.js";
import { MS, retryAt } from "./testing.js";
import { type Pcpu, type SchedName, SchedUnit } from "./types.js";

/** A busy mixed scenario: three pools, mixed classes, periodic loads, affinity changes, moves. */
function mixed(): SchedSim {
  const cpus: Pcpu[] = [
    { id: 0, cls: "big", speed: 1024 },
    { id: 1, cls: "big", speed: 1024 },
    { id: 2, cls: "LITTLE", speed: 512 },
    { id: 3, cls: "LITTLE", speed: 512 },
    { id: 4, cls: "LITTLE", speed: 512 },
  ];
  const pools = new Cpupools({ pcpus: cpus, pool0Pcpus: [0, 1, 2] });
  const rt = pools.create(CPUPOOL_PAR_ANY, "rt", "rtds");
  const nul = pools.create(CPUPOOL_PAR_ANY, "null", "null");
  pools.addPcpu(rt, 3, 0);
  pools.addPcpu(nul, 4, 0);
  pools.addDomain(1, 3, 0, 0);
  pools.addDomain(2, 2, 0, 0);
  pools.setDomainParams(2, { kind: "credit2", weight: 700, cap: 80 }, 0);
  pools.addDomain(3, 2, rt, 0);
  pools.setDomainParams(3, { kind: "rtds", periodUs: 7_000, budgetUs: 2_000, extratime: true }, 0);
  pools.addDomain(4, 2, nul, 0);
  pools.adjustAffinity(1, 2, CpuMask.of(2), CpuMask.ALL, 0);
  pools.adjustAffinity(1, 1, CpuMask.ALL, CpuMask.of(1), 0);
  const sim = new SchedSim(pools);
  sim.setDomainWorkload(1, { kind: "busy" });
  sim.setWorkload(2, 0, { kind: "periodic", runNs: 3 * MS, sleepNs: 1 * MS });
  sim.setWorkload(2, 1, { kind: "periodic", runNs: 700_000, sleepNs: 2_300_000 }, 5 * MS);
  sim.setWorkload(3, 0, { kind: "busy" });
  sim.setWorkload(3, 1, { kind: "periodic", runNs: 1 * MS, sleepNs: 4 * MS });
  sim.setWorkload(4, 0, { kind: "periodic", runNs: 20 * MS, sleepNs: 5 * MS });
  sim.setWorkload(4, 1, { kind: "busy" });
  sim.at(120 * MS, (s) => pools.adjustAffinity(1, 0, CpuMask.of(0, 2), CpuMask.of(2), s.now));
  retryAt(sim, 200 * MS, (now) => {
    const rc = pools.removePcpu(0, 2, now);
    return rc === 0 ? pools.addPcpu(rt, 2, now) : rc;
  });
  sim.at(300 * MS, (s) => pools.setDomainParams(2, { kind: "credit2", cap: 0 }, s.now));
  sim.at(350 * MS, (s) => {
    for (const u of pools.units(2)) pools.block(2, u.vcpuId, s.now);
  });
  retryAt(sim, 350 * MS, (now) => pools.moveDomain(2, rt, now));
  sim.at(351 * MS, (s) => {
    for (const u of pools.units(2)) pools.wake(2, u.vcpuId, s.now);
  });
  return sim;
}

describe("simulator", () => {
  it("is deterministic: the same scenario twice gives identical decision traces", (t) => {
    const a = mixed();
    const b = mixed();
    a.run(500 * MS);
    b.run(500 * MS);
    t.diagnostic(`${a.trace.length} decisions`);
    assert.ok(a.trace.length > 1000);
    assert.deepEqual(a.trace, b.trace);
    // Running in two legs does not change anything either.
    const c = mixed();
    c.run(250 * MS);
    c.run(500 * MS);
    assert.deepEqual(c.trace, a.trace);
  });

  for (const sched of ["credit2", "rtds", "null"] as SchedName[]) {
    it(`${sched}: identical traces across runs with random-looking affinity churn`, () => {
      const run = (): string[] => {
        const pools = new Cpupools({ pcpus: [0, 1, 2].map((id) => ({ id, cls: "big", speed: 1024 })), sched });
        for (let d = 1; d <= 4; d++) pools.addDomain(d, 2, 0, 0);
        const sim = new SchedSim(pools);
        for (let d = 1; d <= 4; d++) {
          sim.setWorkload(d, 0, { kind: "busy" });
          sim.setWorkload(d, 1, { kind: "periodic", runNs: d * 300_000, sleepNs: (5 - d) * 700_000 });
        }
        // A fixed pseudo-random sequence (LCG) of pinning changes.
        let x = 12345;
        const rnd = (n: number): number => {
          x = (x * 1103515245 + 12345) % 2 ** 31;
          return x % n;
        };
        for (let k = 1; k < 40; k++) {
          const d = 1 + rnd(4);
          const v = rnd(2);
          const mask = CpuMask.from([0, 1, 2].filter(() => rnd(2) === 1).concat([rnd(3)]));
          sim.at(k * 5 * MS, (s) => pools.adjustAffinity(d, v, mask, CpuMask.ALL, s.now));
        }
        sim.run(200 * MS);
        return sim.trace;
      };
      const a = run();
      assert.deepEqual(run(), a);
    });
  }

  it("the generic layer refuses a decision that breaks hard affinity", () => {
    // A deliberately broken policy: runs the first unit everywhere.
    class Broken extends NullScheduler {
      protected override pick(_slot: PcpuSlot): PickResult {
        return { next: this.units()[0] ?? null, sliceNs: null };
      }
    }
    const s = new Broken();
    s.addPcpu({ id: 0, cls: "big", speed: 1024 }, 0);
    s.addPcpu({ id: 1, cls: "big", speed: 1024 }, 0);
    s.addDomain(1, 0);
    const u = new SchedUnit(1, 0, "runnable");
    u.hard = CpuMask.of(0);
    assert.equal(s.insertUnit(u, 0), 0);
    assert.equal(s.doSchedule(0, 0).next, u);
    assert.throws(() => s.doSchedule(1, 0), /hard affinity/);
  });
});
