import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Errno } from "../public/errno.js";
import { CpuMask } from "./cpumask.js";
import { Cpupools } from "./cpupool.js";
import type { NullScheduler } from "./null.js";
import { pcpus } from "./sim.js";
import { MS, SEC, scenario } from "./testing.js";

const nul = (pools: Cpupools): NullScheduler => pools.pool(0)!.sched as NullScheduler;

describe("null scheduler", () => {
  it("runs one vCPU per pCPU with no time slice; extra vCPUs wait", () => {
    const { pools, sim } = scenario(
      "null",
      pcpus(2),
      [{ domid: 1, vcpus: 2 }, { domid: 2 }],
      {},
      {
        onDecision: (d) => assert.equal(d.sliceNs, null),
      },
    );
    sim.run(SEC);
    assert.equal(sim.work(1, 0), SEC);
    assert.equal(sim.work(1, 1), SEC);
    assert.equal(sim.work(2, 0), 0);
    assert.deepEqual(nul(pools).waiting(), [pools.unit(2, 0)]);
    assert.equal(nul(pools).assignment(pools.unit(1, 0)!), 0);
    assert.equal(nul(pools).assignment(pools.unit(1, 1)!), 1);
    // Only the start-up decisions: nothing is ever re-decided without an event.
    assert.ok(sim.decisions <= 6, `${sim.decisions} decisions`);
  });

  it("a waiting vCPU takes over a pCPU when its vCPU blocks", (t) => {
    const { pools, sim } = scenario("null", pcpus(2), [
      { domid: 1, load: { kind: "periodic", runNs: 100 * MS, sleepNs: 50 * MS } },
      { domid: 2 },
      { domid: 3 },
    ]);
    sim.run(SEC);
    const w = [1, 2, 3].map((d) => sim.domainWork(d) / SEC);
    t.diagnostic(`work ${w.map((x) => x.toFixed(3)).join(", ")}`);
    assert.equal(sim.domainWork(1), 100 * MS); // blocked at 100 ms, its pCPU went to d3 for good
    assert.equal(sim.domainWork(2), SEC);
    assert.equal(sim.domainWork(3), 900 * MS);
    assert.equal(nul(pools).assignment(pools.unit(3, 0)!), 0);
    assert.deepEqual(nul(pools).waiting(), [pools.unit(1, 0)]);
  });

  it("releaseOnBlock: false keeps Xen's rule: a blocked vCPU keeps its pCPU until it goes offline", () => {
    const { pools, sim } = scenario(
      "null",
      pcpus(1),
      [{ domid: 1, load: { kind: "periodic", runNs: 10 * MS, sleepNs: 10 * MS } }, { domid: 2 }],
      { null: { releaseOnBlock: false } },
    );
    sim.at(500 * MS, (s) => {
      // Take d1 down: its pCPU goes to the waiter; its next wake only queues it.
      pools.offline(1, 0, s.now);
    });
    sim.run(SEC);
    assert.equal(sim.domainWork(1), 250 * MS);
    assert.equal(sim.domainWork(2), 500 * MS);
  });

  it("a wake tickles the vCPU's own idle pCPU", () => {
    const pools = new Cpupools({ pcpus: pcpus(2), sched: "null" });
    pools.addDomain(1, 1, 0, 0);
    pools.addDomain(2, 1, 0, 0);
    pools.doSchedule(0, 0);
    pools.doSchedule(1, 0);
    pools.takeTickles();
    pools.wake(2, 0, 0);
    assert.deepEqual(pools.takeTickles(), [1]);
    assert.equal(pools.doSchedule(1, 0).next, pools.unit(2, 0));
    assert.equal(pools.doSchedule(0, 0).next, null);
  });

  it("respects hard affinity even when another pCPU is free, and prefers soft affinity", () => {
    const pools = new Cpupools({ pcpus: pcpus(3), sched: "null" });
    pools.addDomain(1, 3, 0, 0, "offline");
    const s = nul(pools);
    pools.adjustAffinity(1, 0, CpuMask.of(1), CpuMask.ALL, 0);
    pools.adjustAffinity(1, 1, CpuMask.of(1), CpuMask.ALL, 0);
    pools.adjustAffinity(1, 2, CpuMask.ALL, CpuMask.of(2), 0);
    for (const v of [0, 1, 2]) pools.wake(1, v, 0);
    assert.equal(s.assignment(pools.unit(1, 0)!), 1);
    assert.equal(s.assignment(pools.unit(1, 1)!), null);
    assert.equal(s.assignment(pools.unit(1, 2)!), 2);
    assert.deepEqual(s.waiting(), [pools.unit(1, 1)]);
    // Widening its hard affinity lets the waiter take the free pCPU.
    assert.equal(pools.adjustAffinity(1, 1, CpuMask.of(0, 1), CpuMask.ALL, 0), 0);
    assert.equal(s.assignment(pools.unit(1, 1)!), 0);
    assert.deepEqual(s.waiting(), []);
  });

  it("a vCPU that loses its pCPU from hard affinity moves or waits", () => {
    const pools = new Cpupools({ pcpus: pcpus(2), sched: "null" });
    pools.addDomain(1, 2, 0, 0, "runnable");
    const s = nul(pools);
    pools.doSchedule(0, 0);
    pools.doSchedule(1, 0);
    pools.takeTickles();
    assert.equal(pools.adjustAffinity(1, 0, CpuMask.of(1), CpuMask.ALL, MS), 0);
    assert.deepEqual(pools.takeTickles(), [0]);
    assert.equal(pools.doSchedule(0, MS).next, null);
    assert.equal(s.assignment(pools.unit(1, 0)!), null);
    assert.deepEqual(s.waiting(), [pools.unit(1, 0)]);
    pools.offline(1, 1, 2 * MS);
    assert.equal(s.assignment(pools.unit(1, 0)!), 1);
    assert.deepEqual(pools.takeTickles(), [1]);
    assert.equal(pools.doSchedule(1, 2 * MS).next, pools.unit(1, 0));
  });

  it("has no parameters", () => {
    const pools = new Cpupools({ pcpus: pcpus(1), sched: "null" });
    pools.addDomain(1, 1, 0, 0);
    assert.deepEqual(pools.getDomainParams(1), { kind: "null" });
    assert.equal(pools.setDomainParams(1, { kind: "null" }, 0), 0);
    assert.equal(pools.setDomainParams(1, { kind: "credit2", weight: 3 }, 0), -Errno.EINVAL);
    assert.equal(pools.pool(0)!.sched.nextTimerNs(), null);
  });
});
