import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { type Machine, XEN_SCHEDULER } from "@xenon/hypervisor";
import { type BuiltSystem, buildSystem, type DomainSpec } from "@xenon/toolstack";

/**
 * domctl/sysctl from a control domain acting on the running host (Machine's ControlHooks): real
 * spin guests on pCPU worker threads are paused, pinned, re-weighted, moved between cpupools
 * made at run time, and destroyed while they run.
 */
const DOM0 = 0;
const spin = (name: string): DomainSpec => ({
  path: guestImagePath("spin"),
  name,
  memoryMiB: 2,
  bootargs: `name=${name} report=100000000 total=0`,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function instret(m: Machine, domid: number): number {
  return m.vcpuStats().find((s) => s.domid === domid && s.vcpu === 0)!.instret;
}

/** Waits until the domain's vCPU 0 has retired more instructions than `from` (or times out). */
async function progresses(m: Machine, domid: number, ms = 3000): Promise<boolean> {
  const from = instret(m, domid);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await sleep(5);
    if (instret(m, domid) > from) return true;
  }
  return false;
}

function boot(pcpus: number): BuiltSystem {
  const sys = buildSystem({ domains: [spin("a"), spin("b")], pcpus, console: () => {} });
  // A TypeScript control domain: domctl/sysctl are issued in its name.
  const d0 = sys.hv.domains.create({
    domid: DOM0,
    name: "Domain-0",
    maxVcpus: 1,
    p2mPoolPages: 16,
    flags: { privileged: true },
  });
  assert.equal(typeof d0, "object");
  sys.machine.start();
  return sys;
}

describe("domctl pause / unpause under the running machine", () => {
  let sys: BuiltSystem;
  before(() => {
    sys = boot(2);
  });
  after(async () => sys.machine.close());

  it("a paused domain stops retiring instructions; the other keeps running; unpause resumes it", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    assert.ok(await progresses(machine, a), "a runs before the pause");
    assert.equal(hv.hypercalls.domctlPauseDomain(DOM0, a), 0);
    assert.ok(await machine.descheduled(a), "a leaves its pCPU");
    const info = hv.hypercalls.domctlGetDomainInfo(DOM0, a);
    assert.ok(typeof info === "object" && info.domid === a && (info.flags & 8) !== 0, "XEN_DOMINF_paused");
    const frozen = instret(machine, a);
    assert.ok(await progresses(machine, b), "b still runs");
    await sleep(30);
    assert.equal(instret(machine, a), frozen, "nothing retired while paused");
    assert.equal(machine.vcpuStats().find((s) => s.domid === a)!.state, "paused");
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, a), 0);
    assert.ok(await progresses(machine, a), "a runs again");
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, a), -22, "-EINVAL: not paused");
  });

  it("pauses nest: the domain runs again only after as many unpauses", async () => {
    const { hv, machine } = sys;
    const a = sys.domids[0]!;
    assert.equal(hv.hypercalls.domctlPauseDomain(DOM0, a), 0);
    assert.equal(hv.hypercalls.domctlPauseDomain(DOM0, a), 0);
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, a), 0);
    assert.ok(await machine.descheduled(a));
    assert.equal(await progresses(machine, a, 60), false, "still paused once");
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, a), 0);
    assert.ok(await progresses(machine, a));
  });

  it("an unprivileged caller is refused (-EPERM) and nothing changes", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    assert.equal(hv.hypercalls.domctlPauseDomain(b, a), -1);
    assert.ok(await progresses(machine, a));
  });
});

describe("affinity and scheduler parameters under the running machine", () => {
  let sys: BuiltSystem;
  before(() => {
    sys = boot(2);
  });
  after(async () => sys.machine.close());

  it("hard affinity moves a running vCPU to the pCPU it is pinned to", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    assert.ok((await progresses(machine, a)) && (await progresses(machine, b)), "both run first");
    for (const [d, cpu] of [
      [a, 1],
      [b, 0],
    ] as const) {
      const r = hv.hypercalls.domctlSetVcpuAffinity(DOM0, d, 0, [cpu], null);
      // Effective masks: soft is cut down to hard (Xen's setvcpuaffinity answer).
      assert.deepEqual(r, { hard: [cpu], soft: [cpu] });
    }
    const runsOn = (d: number) => machine.vcpuStats().find((s) => s.domid === d)!.pcpu;
    for (let i = 0; i < 200 && (runsOn(a) !== 1 || runsOn(b) !== 0); i++) await sleep(10);
    assert.equal(runsOn(a), 1);
    assert.equal(runsOn(b), 0);
    assert.ok(await progresses(machine, a));
    assert.deepEqual(hv.hypercalls.domctlGetVcpuAffinity(DOM0, a, 0), { hard: [1], soft: [0, 1] });
  });

  it("credit2 weight and cap set by domctl are what the scheduler reports", () => {
    const { hv } = sys;
    const a = sys.domids[0]!;
    const c2 = XEN_SCHEDULER.credit2;
    assert.equal(hv.hypercalls.domctlSchedPutInfo(DOM0, a, c2, { kind: "credit2", weight: 512, cap: 50 }), 0);
    const got = hv.hypercalls.domctlSchedGetInfo(DOM0, a, c2);
    assert.ok(typeof got === "object" && got.kind === "credit2");
    assert.equal(got.weight, 512);
    assert.equal(got.cap, 50);
    assert.equal(hv.hypercalls.domctlSchedGetInfo(DOM0, a, XEN_SCHEDULER.rtds), -22, "-EINVAL: not its scheduler");
  });
});

describe("cpupools changed at run time", () => {
  let sys: BuiltSystem;
  before(() => {
    sys = boot(2);
  });
  after(async () => sys.machine.close());

  it("a pCPU moves to a new pool and a domain follows it; each domain then runs on its pool's pCPU only", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    const pool = hv.hypercalls.sysctlCpupoolCreate(DOM0, 0xffffffff, XEN_SCHEDULER.rtds);
    assert.equal(pool, 1);
    assert.equal(await machine.retry(() => hv.hypercalls.sysctlCpupoolRemoveCpu(DOM0, 0, 1)), 0);
    assert.deepEqual(hv.hypercalls.sysctlCpupoolFreeInfo(DOM0), [1]);
    assert.equal(hv.hypercalls.sysctlCpupoolAddCpu(DOM0, pool, 1), 0);
    // Xen moves a paused domain; here a busy vCPU makes the move answer -EAGAIN until it is off.
    assert.equal(hv.hypercalls.domctlPauseDomain(DOM0, b), 0);
    assert.equal(await machine.retry(() => hv.hypercalls.sysctlCpupoolMoveDomain(DOM0, pool, b)), 0);
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, b), 0);
    const info = hv.hypercalls.domctlGetDomainInfo(DOM0, b);
    assert.ok(typeof info === "object" && info.cpupool === pool);
    assert.ok(await progresses(machine, b), "b runs in the new pool");
    assert.ok(await progresses(machine, a), "a runs in pool 0");
    await sleep(30);
    const where = (d: number) => machine.vcpuStats().find((s) => s.domid === d)!.pcpu;
    assert.equal(where(b), 1);
    assert.equal(where(a), 0);
    const list = machine.cpupoolList();
    assert.deepEqual(
      list.map((p) => [p.id, p.sched, p.pcpus, p.domains]),
      [
        [0, "credit2", [0], [a]],
        [1, "rtds", [1], [b]],
      ],
    );
    assert.equal(hv.hypercalls.sysctlCpupoolDestroy(DOM0, pool), -16, "-EBUSY: it still has a domain");
  });

  it("a domain moved back and the emptied pool destroyed: its pCPU returns to pool 0", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    assert.equal(hv.hypercalls.domctlPauseDomain(DOM0, b), 0);
    assert.equal(await machine.retry(() => hv.hypercalls.sysctlCpupoolMoveDomain(DOM0, 0, b)), 0);
    assert.equal(hv.hypercalls.domctlUnpauseDomain(DOM0, b), 0);
    assert.equal(await machine.retry(() => hv.hypercalls.sysctlCpupoolRemoveCpu(DOM0, 1, 1)), 0);
    assert.equal(hv.hypercalls.sysctlCpupoolDestroy(DOM0, 1), 0);
    assert.equal(hv.hypercalls.sysctlCpupoolAddCpu(DOM0, 0, 0xffffffff), 0);
    assert.ok(await progresses(machine, a));
    assert.ok(await progresses(machine, b));
    assert.deepEqual(
      machine.cpupoolList().map((p) => p.pcpus),
      [[0, 1]],
    );
  });
});

describe("destroy and create through domctl under the running machine", () => {
  let sys: BuiltSystem;
  before(() => {
    sys = boot(2);
  });
  after(async () => sys.machine.close());

  it("destroying a running domain returns all its frames; the other domain is unharmed", async () => {
    const { hv, machine } = sys;
    const [a, b] = sys.domids as [number, number];
    assert.ok(await progresses(machine, a));
    const freeBefore = hv.allocator.freeFrames;
    const rc = await machine.retry(() => hv.hypercalls.domctlDestroyDomain(DOM0, a));
    assert.equal(rc, 0);
    assert.equal(hv.domains.get(a), undefined);
    assert.ok(hv.allocator.freeFrames > freeBefore + 512 - 1, "2 MiB of RAM and more came back");
    assert.deepEqual(
      machine.endings().map((e) => [e.domid, e.reason]),
      [[a, -2]],
    );
    assert.ok(await progresses(machine, b));
    assert.equal(hv.hypercalls.domctlDestroyDomain(DOM0, a), -3, "-ESRCH: gone");
    assert.equal(hv.hypercalls.domctlDestroyDomain(DOM0, DOM0), -22, "-EINVAL: not itself");
  });

  it("a domain made by XEN_DOMCTL_createdomain is paused in pool 0 until destroyed", () => {
    const { hv } = sys;
    const domid = hv.hypercalls.domctlCreateDomain(DOM0, {
      flags: 3,
      maxVcpus: 2,
      maxEvtchnPort: 1023,
      maxGrantFrames: -1,
      maxMaptrackFrames: -1,
      grantOpts: 1,
      cpupoolId: 0,
      name: "new",
    });
    assert.ok(domid > 0);
    const info = hv.hypercalls.domctlGetDomainInfo(DOM0, domid);
    assert.ok(typeof info === "object" && info.domid === domid);
    assert.equal(info.cpupool, 0);
    assert.ok((info.flags & 8) !== 0, "paused");
    assert.equal(info.nrOnlineVcpus, 1, "vCPU 1 is down until VCPUOP_up");
    assert.equal(hv.hypercalls.domctlDestroyDomain(DOM0, domid), 0, "nothing of it runs: done at once");
    assert.equal(hv.domains.get(domid), undefined);
  });
});
