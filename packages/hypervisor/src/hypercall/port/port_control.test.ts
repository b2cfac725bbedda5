import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pack, unpack } from "msgpackr";
import { CpupoolControl } from "../../control_cpupools.js";
import { Errno } from "../../public/errno.js";
import { DomctlCdf, XEN_SYSCTL_CPUPOOL_PAR_ANY } from "../../public/xen.js";
import { Cpupools } from "../../sched/cpupool.js";
import { XEN_SCHEDULER } from "../../sched/types.js";
import { makeDomain, makeHost } from "../../test_support.js";
import type { PortDown, PortReply } from "./protocol.js";
import { PortServer } from "./server.js";

/** A PortServer whose replies come back through msgpackr, as they would over a byte stream. */
function port(hv: ReturnType<typeof makeHost>["hv"], domid: number) {
  const replies: PortDown[] = [];
  const server = new PortServer(hv, domid, { send: (m) => replies.push(unpack(pack(m)) as PortDown) }, false);
  let id = 0;
  return (op: string, ...args: unknown[]): PortReply => {
    server.handle({ id: ++id, op, args });
    const r = replies.pop() as PortReply;
    assert.equal(r.id, id);
    return r;
  };
}

function setup() {
  const host = makeHost();
  const ctl = makeDomain(host.hv, { domid: 0, flags: { privileged: true } }, 0);
  const pools = new Cpupools({ pcpus: [0, 1].map((id) => ({ id, cls: "big", speed: 1024 })) });
  host.hv.control = new CpupoolControl(pools, { now: () => 0 });
  return { ...host, ctl, pools };
}

const config = {
  flags: DomctlCdf.hvm | DomctlCdf.hap,
  maxVcpus: 2,
  maxEvtchnPort: 1023,
  maxGrantFrames: -1,
  maxMaptrackFrames: -1,
  grantOpts: 1,
  cpupoolId: 0,
  name: "guest",
};

describe("domctl/sysctl over the hypercall port (a TypeScript control domain)", () => {
  it("creates, configures, lists and destroys a domain", () => {
    const { hv, ctl, pools } = setup();
    const call = port(hv, ctl.domid);
    const id = call("domctlCreateDomain", config).ok as number;
    assert.ok(id > 0);
    assert.equal(hv.domains.get(id)!.name, "guest");
    assert.equal(call("domctlMaxMem", id, 8192).ok, 0);
    assert.equal(call("domctlUnpauseDomain", id).ok, 0);
    assert.deepEqual(
      pools.units(id).map((u) => u.state),
      ["runnable", "blocked"],
    );
    const info = call("domctlGetDomainInfo", id).ok as Record<string, number>;
    assert.deepEqual([info.domid, info.maxPages, info.nrOnlineVcpus, info.cpupool], [id, 2048, 2, 0]);
    assert.deepEqual(call("domctlSetVcpuAffinity", id, 0, [1], null).ok, { hard: [1], soft: [1] });
    assert.deepEqual(call("domctlGetVcpuAffinity", id, 0).ok, { hard: [1], soft: [0, 1] });
    assert.equal(call("domctlSchedPutInfo", id, XEN_SCHEDULER.credit2, { kind: "credit2", weight: 128 }).ok, 0);
    assert.deepEqual(call("domctlSchedGetInfo", id, XEN_SCHEDULER.credit2).ok, {
      kind: "credit2",
      weight: 128,
      cap: 0,
    });
    const list = call("sysctlGetDomainInfoList", 0, 10).ok as Array<{ domid: number }>;
    assert.deepEqual(
      list.map((i) => i.domid),
      [0, id],
    );
    const phys = call("sysctlPhysinfo").ok as Record<string, number>;
    assert.deepEqual([phys.nrCpus, phys.maxCpuId, phys.totalPages], [2, 1, hv.memory.totalFrames]);
    assert.equal(call("sysctlSchedId").ok, XEN_SCHEDULER.credit2);
    assert.equal(call("domctlDestroyDomain", id).ok, 0);
    assert.equal(pools.poolOfDomain(id), undefined);
  });

  it("cpupools: create, move a pCPU, info, free map, pool parameters", () => {
    const { hv, ctl } = setup();
    const call = port(hv, ctl.domid);
    const pool = call("sysctlCpupoolCreate", XEN_SYSCTL_CPUPOOL_PAR_ANY, XEN_SCHEDULER.rtds).ok as number;
    assert.equal(pool, 1);
    assert.equal(call("sysctlCpupoolRemoveCpu", 0, 1).ok, 0);
    assert.deepEqual(call("sysctlCpupoolFreeInfo").ok, [1]);
    assert.equal(call("sysctlCpupoolAddCpu", pool, 1).ok, 0);
    assert.deepEqual(call("sysctlCpupoolInfo", 1).ok, { poolId: 1, schedId: XEN_SCHEDULER.rtds, pcpus: [1], nDom: 0 });
    const id = call("domctlCreateDomain", { ...config, cpupoolId: pool }).ok as number;
    assert.equal((call("domctlSchedGetVcpuInfo", id, XEN_SCHEDULER.rtds, 1).ok as { budgetUs: number }).budgetUs, 4000);
    const rt = { kind: "rtds", periodUs: 1000, budgetUs: 500, extratime: true };
    assert.equal(call("domctlSchedPutVcpuInfo", id, XEN_SCHEDULER.rtds, 1, rt).ok, 0);
    assert.deepEqual(call("domctlSchedGetVcpuInfo", id, XEN_SCHEDULER.rtds, 1).ok, rt);
    assert.equal(call("sysctlCpupoolMoveDomain", 0, id).ok, 0);
    assert.equal(
      call("sysctlSchedPutPoolParams", 0, XEN_SCHEDULER.credit2, { kind: "credit2", ratelimitUs: 500 }).ok,
      0,
    );
    assert.deepEqual(call("sysctlSchedGetPoolParams", 0, XEN_SCHEDULER.credit2).ok, {
      kind: "credit2",
      ratelimitUs: 500,
    });
    assert.equal(call("sysctlCpupoolRemoveCpu", pool, 1).ok, 0);
    assert.equal(call("sysctlCpupoolDestroy", pool).ok, 0);
  });

  it("unprivileged domains get -EPERM; malformed arguments are errors, not crashes", () => {
    const { hv, ctl } = setup();
    const domU = makeDomain(hv, {}, 0);
    const call = port(hv, domU.domid);
    for (const [op, args] of [
      ["domctlCreateDomain", [config]],
      ["domctlPauseDomain", [ctl.domid]],
      ["domctlGetDomainInfo", [0]],
      ["sysctlPhysinfo", []],
      ["sysctlCpupoolFreeInfo", []],
    ] as const) {
      assert.equal(call(op, ...args).ok, -Errno.EPERM, op);
    }
    const priv = port(hv, ctl.domid);
    assert.match(priv("domctlCreateDomain", { ...config, flags: "x" }).err ?? "", /flags/);
    assert.match(priv("domctlCreateDomain", null).err ?? "", /object/);
    assert.match(priv("domctlSetVcpuAffinity", 1, 0, [0.5], null).err ?? "", /affinity/);
    assert.match(priv("domctlSchedPutInfo", 1, 6, [1]).err ?? "", /object/);
    assert.equal(priv("domctlSchedPutInfo", domU.domid, 6, { kind: "credit2", weight: 1.5 }).ok, -Errno.ESRCH);
    assert.equal(priv("domctlCreateDomain", { ...config, cpupoolId: -1 }).ok, -Errno.EINVAL);
    hv.control = undefined;
    assert.equal(priv("domctlCreateDomain", config).ok, -Errno.ENOSYS);
  });
});
