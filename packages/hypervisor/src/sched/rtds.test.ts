import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Errno } from "../public/errno.js";
import { CpuMask } from "./cpumask.js";
import { Cpupools } from "./cpupool.js";
import type { RtdsScheduler } from "./rtds.js";
import { pcpus } from "./sim.js";
import { assertWithin, fmt, MS, SEC, scenario } from "./testing.js";
import type { Pcpu } from "./types.js";

const rt = (pools: Cpupools): RtdsScheduler => pools.pool(0)!.sched as RtdsScheduler;
const rtds = (periodUs: number, budgetUs: number, extratime = false) =>
  ({ kind: "rtds", periodUs, budgetUs, extratime }) as const;

describe("rtds: budgets and deadlines", () => {
  it("a 2 ms / 10 ms vCPU gets at least its budget in every period against always-busy vCPUs", (t) => {
    const { pools, sim } = scenario("rtds", pcpus(1), [
      { domid: 1, params: rtds(10_000, 2_000) },
      { domid: 2, params: rtds(10_000, 4_000) },
      { domid: 3, params: rtds(20_000, 5_000) },
      // Soaks up all the slack, so the pCPU is never idle.
      { domid: 4, params: rtds(10_000, 500, true) },
    ]);
    sim.run(SEC);
    const u = pools.unit(1, 0)!;
    let min = Number.POSITIVE_INFINITY;
    for (let k = 0; k < 100; k++) min = Math.min(min, sim.workIn(u, k * 10 * MS, (k + 1) * 10 * MS));
    const shares = [1, 2, 3, 4].map((d) => sim.domainWork(d) / SEC);
    t.diagnostic(`least work in any 10 ms period ${min / MS} ms; shares ${fmt(shares)}`);
    assert.ok(min >= 2 * MS, `got only ${min} ns in some period`);
    assert.equal(rt(pools).totalDeadlineMisses, 0);
    assertWithin(
      shares.reduce((a, b) => a + b, 0),
      1,
      1e-9,
      "pCPU kept busy",
    );
  });

  it("global EDF on 2 pCPUs: every reservation is met", (t) => {
    const specs = [
      { domid: 1, params: rtds(10_000, 2_000) },
      { domid: 2, params: rtds(5_000, 2_000) },
      { domid: 3, params: rtds(20_000, 6_000) },
      { domid: 4, params: rtds(10_000, 3_000) },
      { domid: 5, params: rtds(10_000, 1_000, true) },
      { domid: 6, params: rtds(10_000, 1_000, true) },
    ];
    const { pools, sim } = scenario("rtds", pcpus(2), specs);
    sim.run(SEC);
    for (const s of specs) {
      const u = pools.unit(s.domid, 0)!;
      const p = s.params.periodUs * 1000;
      for (let k = 0; k < SEC / p; k++) {
        assert.ok(sim.workIn(u, k * p, (k + 1) * p) >= s.params.budgetUs * 1000, `d${s.domid} period ${k}`);
      }
    }
    const util = rt(pools).utilisation();
    t.diagnostic(`utilisation ${util.total.toFixed(3)} of ${util.capacity}, misses ${rt(pools).totalDeadlineMisses}`);
    assert.equal(rt(pools).totalDeadlineMisses, 0);
  });

  it("reports deadline misses when the set is over-utilised", (t) => {
    const { pools, sim } = scenario(
      "rtds",
      pcpus(1),
      [1, 2, 3].map((d) => ({ domid: d })), // 3 × default 4 ms / 10 ms = 120%
    );
    const util = rt(pools).utilisation();
    assert.ok(Math.abs(util.total - 1.2) < 1e-9 && util.capacity === 1 && util.overloaded);
    sim.run(100 * MS);
    const misses = [1, 2, 3].map((d) => rt(pools).deadlineMisses(pools.unit(d, 0)!));
    t.diagnostic(`misses per vCPU over 10 periods: ${misses.join(", ")}`);
    assert.ok(rt(pools).totalDeadlineMisses > 0);
    assert.equal(
      misses.reduce((a, b) => a + b, 0),
      rt(pools).totalDeadlineMisses,
    );
  });

  it("a depleted vCPU waits for its next period (no extratime by default)", (t) => {
    const { sim } = scenario("rtds", pcpus(1), [{ domid: 1, params: rtds(10_000, 2_000) }]);
    sim.run(SEC);
    const frac = sim.domainWork(1) / SEC;
    t.diagnostic(`alone on its pCPU it gets ${frac.toFixed(4)} (budget/period 0.2)`);
    assert.equal(sim.domainWork(1), 0.2 * SEC);
  });

  it("extratime lets a vCPU use idle time, behind every vCPU still within budget", (t) => {
    const { pools, sim } = scenario("rtds", pcpus(1), [
      { domid: 1, params: rtds(10_000, 2_000, true) },
      { domid: 2, params: rtds(10_000, 6_000) },
    ]);
    sim.run(SEC);
    const s = [sim.domainWork(1) / SEC, sim.domainWork(2) / SEC];
    t.diagnostic(`extratime vCPU ${s[0]!.toFixed(4)}, reserved vCPU ${s[1]!.toFixed(4)}`);
    assertWithin(s[0]!, 0.4, 0.01, "extratime share");
    assertWithin(s[1]!, 0.6, 0.01, "reserved share");
    assert.equal(rt(pools).totalDeadlineMisses, 0);
  });

  it("budgets are normalised work: on a LITTLE pCPU a vCPU gets twice the wall time", (t) => {
    const bl: Pcpu[] = [
      { id: 0, cls: "big", speed: 1024 },
      { id: 1, cls: "LITTLE", speed: 512 },
    ];
    const { pools, sim } = scenario("rtds", bl, [
      { domid: 1, params: rtds(10_000, 2_000) },
      { domid: 2, params: rtds(10_000, 2_000) },
    ]);
    pools.adjustAffinity(1, 0, CpuMask.of(0), CpuMask.ALL, 0);
    pools.adjustAffinity(2, 0, CpuMask.of(1), CpuMask.ALL, 0);
    sim.run(SEC);
    t.diagnostic(
      `work ${fmt([sim.domainWork(1) / SEC, sim.domainWork(2) / SEC])}, wall ${fmt([sim.domainRun(1) / SEC, sim.domainRun(2) / SEC])}`,
    );
    assert.equal(sim.domainWork(1), 0.2 * SEC);
    assert.equal(sim.domainWork(2), 0.2 * SEC);
    assert.equal(sim.domainRun(2), 0.4 * SEC);
  });

  it("a wake tickles an idle pCPU, else preempts the latest deadline", () => {
    const pools = new Cpupools({ pcpus: pcpus(2), sched: "rtds" });
    pools.addDomain(1, 1, 0, 0);
    pools.addDomain(2, 1, 0, 0);
    pools.addDomain(3, 1, 0, 0);
    pools.setDomainParams(1, rtds(100_000, 10_000), 0);
    pools.setDomainParams(2, rtds(50_000, 10_000), 0);
    pools.setDomainParams(3, rtds(10_000, 1_000), 0);
    pools.doSchedule(0, 0);
    pools.doSchedule(1, 0);
    pools.takeTickles();
    pools.wake(1, 0, 0);
    assert.deepEqual(pools.takeTickles(), [0]);
    assert.equal(pools.doSchedule(0, 0).next, pools.unit(1, 0));
    pools.wake(2, 0, 0);
    assert.deepEqual(pools.takeTickles(), [1]);
    assert.equal(pools.doSchedule(1, 0).next, pools.unit(2, 0));
    pools.wake(3, 0, 0); // deadline 10 ms: preempts d1 (deadline 100 ms) on p0
    assert.deepEqual(pools.takeTickles(), [0]);
    assert.equal(pools.doSchedule(0, 0).next, pools.unit(3, 0));
  });
});

describe("rtds: parameters", () => {
  it("defaults to period 10000 µs, budget 4000 µs, no extratime", () => {
    const pools = new Cpupools({ pcpus: pcpus(1), sched: "rtds" });
    pools.addDomain(1, 2, 0, 0);
    assert.deepEqual(pools.getDomainParams(1), rtds(10_000, 4_000));
    assert.deepEqual(pools.getVcpuParams(1, 1), rtds(10_000, 4_000));
    assert.deepEqual(pools.pool(0)!.sched.getPoolParams(), { kind: "rtds" });
  });

  it("validates period and budget like Xen", () => {
    const pools = new Cpupools({ pcpus: pcpus(1), sched: "rtds" });
    pools.addDomain(1, 2, 0, 0);
    const bad = [
      { kind: "rtds", periodUs: 0 },
      { kind: "rtds", budgetUs: 0 },
      { kind: "rtds", periodUs: 9, budgetUs: 9 },
      { kind: "rtds", periodUs: 1000, budgetUs: 1001 },
      { kind: "rtds", budgetUs: 20_000 }, // > default period
      { kind: "rtds", periodUs: 10.5 },
      { kind: "credit2", weight: 5 },
    ] as const;
    for (const p of bad) assert.equal(pools.setDomainParams(1, p, 0), -Errno.EINVAL, JSON.stringify(p));
    assert.deepEqual(pools.getDomainParams(1), rtds(10_000, 4_000)); // nothing half-applied
    assert.equal(pools.setDomainParams(1, rtds(10, 10), 0), 0);
    assert.equal(pools.setVcpuParams(1, 1, { kind: "rtds", periodUs: 20_000, budgetUs: 5_000, extratime: true }, 0), 0);
    assert.deepEqual(pools.getVcpuParams(1, 0), rtds(10, 10));
    assert.deepEqual(pools.getVcpuParams(1, 1), rtds(20_000, 5_000, true));
    assert.equal(pools.setVcpuParams(1, 2, rtds(10, 10), 0), -Errno.ENOENT);
    assert.equal(pools.setDomainParams(7, rtds(10, 10), 0), -Errno.ESRCH);
  });

  it("utilisation counts vCPUs that are not offline, against the pool's capacity", () => {
    const pools = new Cpupools({
      pcpus: [
        { id: 0, cls: "big", speed: 1024 },
        { id: 1, cls: "LITTLE", speed: 512 },
      ],
      sched: "rtds",
    });
    pools.addDomain(1, 2, 0, 0);
    pools.setDomainParams(1, rtds(10_000, 5_000), 0);
    assert.deepEqual(rt(pools).utilisation(), { total: 1, capacity: 1.5, overloaded: false });
    pools.offline(1, 1, 0);
    assert.deepEqual(rt(pools).utilisation(), { total: 0.5, capacity: 1.5, overloaded: false });
  });
});
