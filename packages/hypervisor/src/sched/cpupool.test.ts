import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Errno } from "../public/errno.js";
import { CpuMask } from "./cpumask.js";
import { CPUPOOL_PAR_ANY, Cpupools } from "./cpupool.js";
import { pcpus, SchedSim } from "./sim.js";
import { assertWithin, MS, retryAt, SEC } from "./testing.js";
import type { SchedName } from "./types.js";

describe("cpupools", () => {
  it("starts with pool 0 (credit2) holding every pCPU", () => {
    const pools = new Cpupools({ pcpus: pcpus(4) });
    assert.deepEqual(pools.poolIds(), [0]);
    assert.deepEqual(pools.info(0), {
      id: 0,
      name: "Pool-0",
      sched: "credit2",
      schedId: 6,
      pcpus: [0, 1, 2, 3],
      domains: [],
    });
    assert.deepEqual(pools.freePcpus(), []);
    const partial = new Cpupools({ pcpus: pcpus(4), sched: "rtds", pool0Pcpus: [0, 1] });
    assert.deepEqual(partial.info(0)?.pcpus, [0, 1]);
    assert.equal(partial.info(0)?.schedId, 8);
    assert.deepEqual(partial.freePcpus(), [2, 3]);
  });

  it("creates pools, with Xen's errors", () => {
    const pools = new Cpupools({ pcpus: pcpus(2) });
    assert.equal(pools.create(CPUPOOL_PAR_ANY, "rt", "rtds"), 1);
    assert.equal(pools.create(5, "nul", "null"), 5);
    assert.equal(pools.create(5, "other", "null"), -Errno.EEXIST);
    assert.equal(pools.create(7, "rt", "null"), -Errno.EEXIST); // name in use
    assert.equal(pools.create(8, "x", "credit" as SchedName), -Errno.ENOENT); // unknown scheduler
    assert.equal(pools.create(-1, "y", "null"), -Errno.EINVAL);
    assert.equal(pools.create(CPUPOOL_PAR_ANY, "c2", "credit2"), 2);
    // At most 2 × nr_pCPUs pools.
    assert.equal(pools.create(CPUPOOL_PAR_ANY, "z", "null"), -Errno.ENOSPC);
    assert.deepEqual(pools.poolIds(), [0, 1, 2, 5]);
  });

  it("moves pCPUs between pools; a pCPU belongs to at most one", () => {
    const pools = new Cpupools({ pcpus: pcpus(4) });
    const rt = pools.create(CPUPOOL_PAR_ANY, "rt", "rtds");
    assert.equal(pools.addPcpu(rt, 2, 0), -Errno.ENODEV); // still in pool 0
    assert.equal(pools.removePcpu(0, 2, 0), 0);
    assert.equal(pools.removePcpu(0, 3, 0), 0);
    assert.deepEqual(pools.freePcpus(), [2, 3]);
    assert.equal(pools.addPcpu(rt, 2, 0), 0);
    assert.equal(pools.addPcpu(rt, 3, 0), 0);
    assert.equal(pools.addPcpu(0, 3, 0), -Errno.ENODEV);
    assert.deepEqual(pools.info(rt)?.pcpus, [2, 3]);
    assert.equal(pools.poolOfPcpu(3), pools.pool(rt));
    assert.equal(pools.addPcpu(rt, 9, 0), -Errno.EINVAL); // no such pCPU
    assert.equal(pools.addPcpu(42, 2, 0), -Errno.ENOENT); // no such pool
    assert.equal(pools.removePcpu(42, 2, 0), -Errno.ENOENT);
    assert.equal(pools.removePcpu(0, 2, 0), -Errno.EADDRNOTAVAIL); // not in that pool
    assert.equal(pools.removePcpu(0, 0, 0), -Errno.EINVAL); // the boot pCPU stays in pool 0
    assert.equal(pools.removePcpu(0, 99, 0), -Errno.EINVAL);
  });

  it("refuses to remove the last pCPU of a pool with domains (-EBUSY)", () => {
    const pools = new Cpupools({ pcpus: pcpus(2) });
    const p = pools.create(CPUPOOL_PAR_ANY, "p", "credit2");
    pools.removePcpu(0, 1, 0);
    assert.equal(pools.addDomain(3, 1, p, 0), -Errno.ENODEV); // no pCPU yet
    pools.addPcpu(p, 1, 0);
    assert.equal(pools.addDomain(3, 1, p, 0), 0);
    assert.equal(pools.removePcpu(p, 1, 0), -Errno.EBUSY);
    assert.equal(pools.removeDomain(3, 0), 0);
    assert.equal(pools.removePcpu(p, 1, 0), 0);
  });

  it("destroys only empty pools, never pool 0", () => {
    const pools = new Cpupools({ pcpus: pcpus(2) });
    const p = pools.create(CPUPOOL_PAR_ANY, "p", "null");
    assert.equal(pools.destroy(0), -Errno.EBUSY);
    assert.equal(pools.destroy(9), -Errno.ENOENT);
    pools.removePcpu(0, 1, 0);
    pools.addPcpu(p, 1, 0);
    pools.addDomain(4, 1, p, 0);
    assert.equal(pools.destroy(p), -Errno.EBUSY); // domains
    pools.removeDomain(4, 0);
    assert.equal(pools.destroy(p), -Errno.EBUSY); // pCPUs
    pools.removePcpu(p, 1, 0);
    assert.equal(pools.destroy(p), 0);
    assert.deepEqual(pools.poolIds(), [0]);
    assert.deepEqual(pools.freePcpus(), [1]);
  });

  it("manages domains: create, duplicate, unknown pool, vCPU lookups", () => {
    const pools = new Cpupools({ pcpus: pcpus(2) });
    assert.equal(pools.addDomain(1, 2, 0, 0), 0);
    assert.equal(pools.addDomain(1, 1, 0, 0), -Errno.EEXIST);
    assert.equal(pools.addDomain(2, 1, 3, 0), -Errno.ESRCH);
    assert.equal(pools.addDomain(2, 0, 0, 0), -Errno.EINVAL);
    assert.equal(pools.wake(9, 0, 0), -Errno.ESRCH);
    assert.equal(pools.wake(1, 2, 0), -Errno.ENOENT);
    assert.equal(pools.removeDomain(9, 0), -Errno.ESRCH);
    assert.deepEqual(pools.info(0)?.domains, [1]);
    assert.equal(pools.units(1).length, 2);
    assert.equal(pools.unit(1, 1)?.state, "blocked"); // domains start paused
  });

  it("moves a domain to another pool: units leave one scheduler for the other", () => {
    const pools = new Cpupools({ pcpus: pcpus(3) });
    const rt = pools.create(CPUPOOL_PAR_ANY, "rt", "rtds");
    const empty = pools.create(CPUPOOL_PAR_ANY, "empty", "null");
    pools.removePcpu(0, 2, 0);
    pools.addPcpu(rt, 2, 0);
    pools.addDomain(1, 2, 0, 0, "runnable");
    pools.setDomainParams(1, { kind: "credit2", weight: 1000 }, 0);
    pools.adjustAffinity(1, 1, CpuMask.of(1), CpuMask.of(1), 0);
    for (const c of [0, 1, 2]) pools.doSchedule(c, 0);
    pools.takeTickles();
    const u0 = pools.unit(1, 0)!;
    assert.ok(u0.running);
    assert.equal(pools.moveDomain(2, rt, 0), -Errno.ESRCH);
    assert.equal(pools.moveDomain(1, 42, 0), -Errno.ENOENT);
    assert.equal(pools.moveDomain(1, empty, 0), -Errno.ENOENT); // no pCPU there
    assert.equal(pools.moveDomain(1, 0, 0), 0); // already there
    assert.equal(pools.moveDomain(1, rt, MS), -Errno.EAGAIN); // still on pCPUs 0 and 1
    // Pause it, let its pCPUs reschedule, then move it.
    pools.block(1, 0, MS);
    pools.block(1, 1, MS);
    assert.deepEqual(pools.takeTickles(), [0, 1]);
    assert.equal(pools.doSchedule(0, MS).next, null);
    assert.equal(pools.doSchedule(1, MS).next, null);
    assert.equal(pools.moveDomain(1, rt, MS), 0);
    assert.deepEqual(pools.info(0)?.domains, []);
    assert.deepEqual(pools.info(rt)?.domains, [1]);
    assert.equal(pools.poolOfDomain(1), pools.pool(rt));
    assert.ok(pools.pool(rt)!.sched.units(1).includes(u0));
    assert.equal(pools.pool(0)!.sched.units(1).length, 0);
    // Affinity reset and the new scheduler's default parameters, as in Xen.
    assert.ok(pools.unit(1, 1)!.hard.isAll && pools.unit(1, 1)!.soft.isAll);
    assert.deepEqual(pools.getDomainParams(1), { kind: "rtds", periodUs: 10_000, budgetUs: 4_000, extratime: false });
    // Unpaused in the new pool: its pCPU picks one up.
    pools.wake(1, 0, MS);
    pools.wake(1, 1, MS);
    assert.deepEqual(pools.takeTickles(), [2]);
    const d = pools.doSchedule(2, MS);
    assert.ok(d.next === u0 || d.next === pools.unit(1, 1));
    assert.ok(d.migrated);
  });

  it("removing a busy pCPU idles it and moves its unit; a pinned unit's affinity is broken", () => {
    const pools = new Cpupools({ pcpus: pcpus(3) });
    pools.addDomain(1, 1, 0, 0, "runnable");
    pools.adjustAffinity(1, 0, CpuMask.of(2), CpuMask.ALL, 0);
    for (const c of [0, 1, 2]) pools.doSchedule(c, 0);
    pools.takeTickles();
    const u = pools.unit(1, 0)!;
    assert.equal(pools.pool(0)!.sched.current(2), u);
    assert.equal(pools.removePcpu(0, 2, MS), -Errno.EAGAIN);
    assert.ok(u.hard.isAll && u.affinityBroken);
    assert.deepEqual(pools.pool(0)!.sched.pcpuIds(), [0, 1]); // no new work goes there
    assert.deepEqual(pools.takeTickles(), [2]);
    assert.equal(pools.removePcpu(0, 2, MS), -Errno.EAGAIN); // not yet let go
    const d2 = pools.doSchedule(2, MS);
    assert.equal(d2.prev, u);
    assert.equal(d2.next, null);
    assert.equal(d2.sliceNs, null);
    // Only now is u requeued, and an idle pCPU of the pool is asked to take it.
    const t = pools.takeTickles();
    assert.deepEqual(t, [0]);
    assert.equal(pools.doSchedule(0, MS).next, u);
    assert.equal(pools.destroy(0), -Errno.EBUSY);
    assert.equal(pools.removePcpu(0, 2, MS), 0);
    assert.deepEqual(pools.freePcpus(), [2]);
  });

  for (const sched of ["credit2", "rtds", "null"] as SchedName[]) {
    it(`${sched}: removing the only pCPU of pinned units (running or queued) re-places them all`, () => {
      const pools = new Cpupools({ pcpus: pcpus(3), sched });
      pools.addDomain(1, 3, 0, 0);
      for (const v of [0, 1, 2]) pools.adjustAffinity(1, v, CpuMask.of(2), CpuMask.ALL, 0);
      const sim = new SchedSim(pools);
      sim.setDomainWorkload(1, { kind: "busy" });
      retryAt(sim, 50 * MS, (now) => pools.removePcpu(0, 2, now));
      sim.run(50 * MS);
      const before = pools.units(1).map((u) => sim.work(1, u.vcpuId));
      sim.run(150 * MS);
      for (const u of pools.units(1)) {
        assert.ok(u.affinityBroken && u.hard.isAll, `${u.name} affinity`);
        assert.ok(u.processor === null || u.processor < 2, `${u.name} placed on ${u.processor}`);
        assert.equal(sim.unitStats(1, u.vcpuId).perPcpu.get(2) ?? 0, sim.workIn(u, 0, 50 * MS));
      }
      const after = pools.units(1).map((u, i) => sim.work(1, u.vcpuId) - before[i]!);
      // Two pCPUs left for three busy units: both stay busy (null: one unit still waits),
      // except under RTDS, where each unit gets its default 4 ms / 10 ms (1.2 of 2 pCPUs).
      const total = after.reduce((a, b) => a + b, 0);
      if (sched === "rtds") assertWithin(total, 120 * MS, 0.05, "rtds work");
      else assert.equal(total, 200 * MS);
    });
  }

  it("runs several pools side by side, each on its own pCPUs", (t) => {
    const cpus = [...pcpus(2, "big", 1024), ...pcpus(2, "LITTLE", 512, 2)];
    const pools = new Cpupools({ pcpus: cpus, pool0Pcpus: [0, 1] });
    const little = pools.create(CPUPOOL_PAR_ANY, "little-rt", "rtds");
    pools.addPcpu(little, 2, 0);
    pools.addPcpu(little, 3, 0);
    pools.addDomain(1, 2, 0, 0);
    pools.addDomain(2, 2, 0, 0);
    pools.setDomainParams(2, { kind: "credit2", weight: 512 }, 0);
    pools.addDomain(3, 1, little, 0);
    pools.setDomainParams(3, { kind: "rtds", periodUs: 10_000, budgetUs: 3_000 }, 0);
    pools.addDomain(4, 2, little, 0);
    const sim = new SchedSim(pools);
    for (const d of [1, 2, 3, 4]) sim.setDomainWorkload(d, { kind: "busy" });
    // Half-way, d4 moves from the LITTLE pool to pool 0 (paused first, as a driver would).
    sim.at(500 * MS, (s) => {
      for (const u of pools.units(4)) pools.block(4, u.vcpuId, s.now);
    });
    retryAt(sim, 500 * MS, (now) => pools.moveDomain(4, 0, now));
    sim.at(500 * MS + 2000, (s) => {
      for (const u of pools.units(4)) pools.wake(4, u.vcpuId, s.now);
    });
    sim.run(SEC);
    for (const d of [1, 2]) {
      for (const u of pools.units(d)) for (const [c] of sim.unitStats(d, u.vcpuId).perPcpu) assert.ok(c < 2);
    }
    for (const [c] of sim.unitStats(3, 0).perPcpu) assert.ok(c >= 2);
    for (const iv of sim.intervals) {
      if (iv.unit.domid === 4)
        assert.ok(iv.start < 500 * MS ? iv.pcpu >= 2 : iv.pcpu < 2, `d4 on ${iv.pcpu} at ${iv.start}`);
    }
    const w = [1, 2, 3, 4].map((d) => sim.domainWork(d) / SEC);
    t.diagnostic(`work (reference pCPUs): ${w.map((x) => x.toFixed(3)).join(", ")}`);
    // The RT domain keeps its 3 ms / 10 ms reservation throughout.
    const u3 = pools.unit(3, 0)!;
    for (let k = 0; k < 100; k++) assert.ok(sim.workIn(u3, k * 10 * MS, (k + 1) * 10 * MS) >= 3 * MS);
  });
});
