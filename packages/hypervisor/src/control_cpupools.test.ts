import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CpupoolControl } from "./control_cpupools.js";
import type { Domain } from "./domain.js";
import { dispatchHypercall } from "./hypercall/dispatch.js";
import { Errno } from "./public/errno.js";
import {
  decode,
  encode,
  type StructLayout,
  type StructValues,
  XEN_DOMCTL_U_OFFSET,
  XEN_SYSCTL_U_OFFSET,
  XenDomctl,
  XenDomctlCreatedomain,
  XenDomctlGetdomaininfo,
  XenDomctlGetvcpuinfo,
  XenDomctlMaxMem,
  XenDomctlMaxVcpus,
  XenDomctlSchedparamVcpu,
  XenDomctlSchedulerOp,
  XenDomctlSetVirqHandler,
  XenDomctlVcpuaffinity,
  XenSysctl,
  XenSysctlCpupoolOp,
  XenSysctlGetdomaininfolist,
  XenSysctlPhysinfo,
  XenSysctlSchedId,
  XenSysctlSchedulerOp,
} from "./public/layout.js";
import {
  CpupoolOp,
  DomctlCdf,
  DomctlCmd,
  DomctlSchedOp,
  DomInf,
  Hypercall,
  SysctlCmd,
  SysctlSchedOp,
  VcpuAffinity,
  XEN_DOMCTL_INTERFACE_VERSION,
  XEN_DOMCTL_SCHEDRT_EXTRA,
  XEN_SYSCTL_CPUPOOL_PAR_ANY,
} from "./public/xen.js";
import { Cpupools } from "./sched/cpupool.js";
import { XEN_SCHEDULER } from "./sched/types.js";
import { makeDomain, makeHost, ramGpa } from "./test_support.js";

/** The domctl/sysctl struct lives in RAM page 1; bitmaps and arrays in page 2. */
const ARG = ramGpa(1);
const BUF = ramGpa(2);

function put<F extends string>(d: Domain, layout: StructLayout<F>, v: Partial<StructValues<F>>, at: number): void {
  assert.equal(d.guest.copyToGuest(at, encode(layout, v)), 0);
}

function get<F extends string>(d: Domain, layout: StructLayout<F>, at: number): StructValues<F> {
  const b = d.guest.copyFromGuest(at, layout.size);
  assert.ok(b instanceof Uint8Array);
  return decode(layout, b);
}

function domctl<F extends string>(
  d: Domain,
  cmd: number,
  domain: number,
  layout?: StructLayout<F>,
  v: Partial<StructValues<F>> = {},
  version = XEN_DOMCTL_INTERFACE_VERSION,
): number {
  put(d, XenDomctl, { cmd, interface_version: version, domain }, ARG);
  if (layout) put(d, layout, v, ARG + XEN_DOMCTL_U_OFFSET);
  return dispatchHypercall(d, 0, Hypercall.domctl, ARG, 0, 0);
}

function sysctl<F extends string>(d: Domain, cmd: number, layout?: StructLayout<F>, v: Partial<StructValues<F>> = {}) {
  put(d, XenSysctl, { cmd, interface_version: 0x15 }, ARG);
  if (layout) put(d, layout, v, ARG + XEN_SYSCTL_U_OFFSET);
  return dispatchHypercall(d, 0, Hypercall.sysctl, ARG, 0, 0);
}

const U = ARG + XEN_DOMCTL_U_OFFSET;
const SU = ARG + XEN_SYSCTL_U_OFFSET;
const HVM_HAP = DomctlCdf.hvm | DomctlCdf.hap;

function setup(withControl = true) {
  const host = makeHost();
  const dom0 = makeDomain(host.hv, { domid: 0, flags: { privileged: true, hardware: true } }, 8);
  const pools = new Cpupools({
    pcpus: [0, 1, 2, 3].map((id) => ({ id, cls: "big", speed: 1024 })),
    sched: "credit2",
  });
  const control = new CpupoolControl(pools, { now: () => 0 });
  if (withControl) host.hv.control = control;
  return { ...host, dom0, pools, control };
}

function create(dom0: Domain, over: Partial<StructValues<keyof typeof XenDomctlCreatedomain.fields>> = {}, domid = 0) {
  const rc = domctl(dom0, DomctlCmd.createdomain, domid, XenDomctlCreatedomain, {
    flags: HVM_HAP,
    max_vcpus: 2,
    max_evtchn_port: 1023,
    max_grant_frames: -1,
    max_maptrack_frames: -1,
    grant_opts: 1,
    cpupool_id: 0,
    ...over,
  });
  return rc < 0 ? rc : get(dom0, XenDomctl, ARG).domain;
}

/** Writes a byte bitmap of `ids` at BUF + off. */
function bitmap(d: Domain, ids: number[], off = 0, bytes = 1): number {
  const b = new Uint8Array(bytes);
  for (const i of ids) b[i >> 3]! |= 1 << (i & 7);
  assert.equal(d.guest.copyToGuest(BUF + off, b), 0);
  return BUF + off;
}

function bits(d: Domain, at: number, bytes = 1): number[] {
  const b = d.guest.copyFromGuest(at, bytes);
  assert.ok(b instanceof Uint8Array);
  const out: number[] = [];
  for (let i = 0; i < bytes * 8; i++) if (b[i >> 3]! & (1 << (i & 7))) out.push(i);
  return out;
}

describe("domctl through guest memory, with CpupoolControl", () => {
  it("createdomain returns the new domid in domctl.domain; the domain starts paused in its pool", () => {
    const { hv, dom0, pools } = setup();
    const id = create(dom0);
    assert.ok(id > 0);
    const d = hv.domains.get(id)!;
    assert.equal(d.maxVcpus, 2);
    assert.ok(d.paused);
    assert.deepEqual(pools.info(0)!.domains, [id]);
    assert.deepEqual(
      pools.units(id).map((u) => u.state),
      ["blocked", "blocked"],
    );
    // A requested id: taken is -EEXIST, free is used.
    assert.equal(create(dom0, {}, id), -Errno.EEXIST);
    assert.equal(create(dom0, {}, 42), 42);
    // Arm's rule: hvm|hap required; xs_domain accepted; others refused.
    assert.equal(create(dom0, { flags: DomctlCdf.hvm }), -Errno.EINVAL);
    assert.equal(create(dom0, { flags: HVM_HAP | DomctlCdf.nested_virt }), -Errno.EINVAL);
    assert.equal(create(dom0, { grant_opts: 2 }), -Errno.EINVAL);
    assert.equal(create(dom0, { max_vcpus: 0 }), -Errno.EINVAL);
    const xs = create(dom0, { flags: HVM_HAP | DomctlCdf.xs_domain });
    assert.ok(hv.domains.get(xs)!.flags.xenstore);
    assert.ok(get(dom0, XenDomctlGetdomaininfo, U) !== undefined);
  });

  it("a failed createdomain leaves nothing behind", () => {
    const { hv, dom0, allocator } = setup();
    const before = allocator.allocatedFrames;
    const count = hv.domains.count;
    assert.equal(create(dom0, { cpupool_id: 7 }), -Errno.ENOENT);
    assert.equal(allocator.allocatedFrames, before);
    assert.equal(hv.domains.count, count);
  });

  it("pause/unpause: counted, vCPU 0 starts at the first unpause, runnable vCPUs are remembered", () => {
    const { hv, dom0, pools, control } = setup();
    const id = create(dom0);
    const states = () => pools.units(id).map((u) => u.state);
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    assert.deepEqual(states(), ["runnable", "blocked"]);
    assert.equal(hv.domains.get(id)!.paused, false);
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), -Errno.EINVAL);
    control.wake(id, 1);
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, id), 0);
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, id), 0);
    assert.deepEqual(states(), ["blocked", "blocked"]);
    assert.equal(get(dom0, XenDomctl, ARG).domain, id);
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    assert.deepEqual(states(), ["blocked", "blocked"], "still paused once");
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    assert.deepEqual(states(), ["runnable", "runnable"]);
    // The caller cannot pause itself; unknown domains are -ESRCH.
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, 0), -Errno.EINVAL);
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, 999), -Errno.ESRCH);
  });

  it("getdomaininfo: the next domain >= domain, flags, pages, pool; max_mem and max_vcpus", () => {
    const { dom0 } = setup();
    const id = create(dom0, {}, 5);
    assert.equal(domctl(dom0, DomctlCmd.max_mem, id, XenDomctlMaxMem, { max_memkb: 4096 + 3 }), 0);
    assert.equal(domctl(dom0, DomctlCmd.max_vcpus, id, XenDomctlMaxVcpus, { max: 2 }), 0);
    assert.equal(domctl(dom0, DomctlCmd.max_vcpus, id, XenDomctlMaxVcpus, { max: 3 }), -Errno.EINVAL);
    assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, 3, XenDomctlGetdomaininfo, { ssidref: 0xdead }), 0);
    assert.equal(get(dom0, XenDomctl, ARG).domain, 5, "domctl.domain echoes the domain found");
    const i = get(dom0, XenDomctlGetdomaininfo, U);
    assert.equal(i.domain, 5);
    assert.ok(i.flags & DomInf.paused && i.flags & DomInf.hvm_guest && i.flags & DomInf.hap);
    assert.deepEqual([i.tot_pages, i.max_pages, i.nr_online_vcpus, i.max_vcpu_id], [0, 1024, 2, 1]);
    assert.deepEqual([i.cpupool, i.gpaddr_bits, i.ssidref], [0, 32, 0], "the whole struct is rewritten");
    assert.equal(i.flags & (DomInf.running | DomInf.blocked), 0, "paused, but not blocked on an event");
    assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, 6), -Errno.ESRCH);
    assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, 0x7ff0), -Errno.EINVAL);
  });

  it("getdomaininfo running/blocked follow the vCPUs, as in Xen", () => {
    const { dom0, pools } = setup();
    const id = create(dom0);
    const flags = () => {
      assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, id), 0);
      return get(dom0, XenDomctlGetdomaininfo, U).flags & (DomInf.running | DomInf.blocked | DomInf.paused);
    };
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    assert.equal(flags(), 0, "runnable, not yet on a pCPU");
    const dec = pools.doSchedule(0, 0);
    assert.equal(dec.next?.domid, id);
    assert.equal(flags(), DomInf.running);
    pools.block(id, 0, 1);
    pools.doSchedule(0, 1);
    assert.equal(flags(), DomInf.blocked, "every vCPU waits for an event");
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, id), 0);
    assert.equal(flags(), DomInf.blocked | DomInf.paused);
  });

  it("getvcpuinfo and set_virq_handler", () => {
    const { hv, dom0, pools } = setup();
    const id = create(dom0);
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    pools.doSchedule(2, 0);
    assert.equal(domctl(dom0, DomctlCmd.getvcpuinfo, id, XenDomctlGetvcpuinfo, { vcpu: 0 }), 0);
    const v0 = get(dom0, XenDomctlGetvcpuinfo, U);
    assert.deepEqual([v0.online, v0.blocked, v0.running, v0.cpu], [1, 0, 1, 2]);
    assert.equal(domctl(dom0, DomctlCmd.getvcpuinfo, id, XenDomctlGetvcpuinfo, { vcpu: 1 }), 0);
    const v1 = get(dom0, XenDomctlGetvcpuinfo, U);
    assert.deepEqual([v1.online, v1.blocked, v1.running], [1, 1, 0]);
    assert.equal(domctl(dom0, DomctlCmd.getvcpuinfo, id, XenDomctlGetvcpuinfo, { vcpu: 2 }), -Errno.EINVAL);
    // VIRQ_DOM_EXC (3) to the new domain; a per-vCPU VIRQ is refused; destroying it reverts.
    assert.equal(domctl(dom0, DomctlCmd.set_virq_handler, id, XenDomctlSetVirqHandler, { virq: 3 }), 0);
    assert.equal(hv.globalVirqHandler(3)?.domid, id);
    assert.equal(domctl(dom0, DomctlCmd.set_virq_handler, id, XenDomctlSetVirqHandler, { virq: 0 }), -Errno.EINVAL);
    assert.equal(domctl(dom0, DomctlCmd.set_virq_handler, id, XenDomctlSetVirqHandler, { virq: 24 }), -Errno.EINVAL);
    assert.equal(domctl(dom0, DomctlCmd.destroydomain, id), 0);
    assert.equal(hv.globalVirqHandler(3)?.domid, 0);
  });

  it("vcpu affinity: hard and soft as xenctl_bitmaps; set returns the effective masks", () => {
    const { dom0, pools } = setup();
    const id = create(dom0);
    const hard = bitmap(dom0, [1, 2], 0);
    const soft = bitmap(dom0, [2, 3, 7], 8);
    const set = {
      vcpu: 1,
      flags: VcpuAffinity.hard | VcpuAffinity.soft,
      cpumap_hard_bitmap: hard,
      cpumap_hard_nr_bits: 8,
      cpumap_soft_bitmap: soft,
      cpumap_soft_nr_bits: 8,
    };
    assert.equal(domctl(dom0, DomctlCmd.setvcpuaffinity, id, XenDomctlVcpuaffinity, set), 0);
    assert.deepEqual(pools.unit(id, 1)!.hard.ids(), [1, 2]);
    assert.deepEqual(pools.unit(id, 1)!.soft.ids(), [2, 3], "bits above nr_cpu_ids are ignored");
    assert.deepEqual(bits(dom0, hard), [1, 2]);
    assert.deepEqual(bits(dom0, soft), [2], "soft ∩ pool ∩ hard");
    // get returns the plain masks; a 4-bit map masks what it does not cover.
    bitmap(dom0, [], 0);
    bitmap(dom0, [], 8);
    assert.equal(domctl(dom0, DomctlCmd.getvcpuaffinity, id, XenDomctlVcpuaffinity, set), 0);
    assert.deepEqual(
      [bits(dom0, hard), bits(dom0, soft)],
      [
        [1, 2],
        [2, 3],
      ],
    );
    assert.equal(
      domctl(dom0, DomctlCmd.getvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, vcpu: 0, flags: VcpuAffinity.hard }),
      0,
    );
    assert.deepEqual(bits(dom0, hard), [0, 1, 2, 3], "the default hard affinity is every pCPU");
    // A hard mask outside the pool, flags 0, a null handle, a bad vCPU: -EINVAL; a bad handle -EFAULT.
    bitmap(dom0, [6], 0);
    assert.equal(
      domctl(dom0, DomctlCmd.setvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, flags: VcpuAffinity.hard }),
      -Errno.EINVAL,
    );
    assert.deepEqual(pools.unit(id, 1)!.hard.ids(), [1, 2], "nothing changed");
    assert.equal(
      domctl(dom0, DomctlCmd.setvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, flags: 0 }),
      -Errno.EINVAL,
    );
    assert.equal(
      domctl(dom0, DomctlCmd.getvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, cpumap_soft_bitmap: 0 }),
      -Errno.EINVAL,
    );
    assert.equal(
      domctl(dom0, DomctlCmd.getvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, vcpu: 2 }),
      -Errno.EINVAL,
    );
    assert.equal(
      domctl(dom0, DomctlCmd.getvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, cpumap_hard_bitmap: 0x1000 }),
      -Errno.EFAULT,
    );
    // Naming every pCPU gives "all" back (pCPUs added later stay allowed).
    bitmap(dom0, [0, 1, 2, 3], 0);
    assert.equal(
      domctl(dom0, DomctlCmd.setvcpuaffinity, id, XenDomctlVcpuaffinity, { ...set, flags: VcpuAffinity.hard }),
      0,
    );
    assert.ok(pools.unit(id, 1)!.hard.isAll);
  });

  it("scheduler_op: credit2 weight/cap, RTDS period/budget per domain and per vCPU", () => {
    const { dom0, pools } = setup();
    const id = create(dom0);
    const c2 = XEN_SCHEDULER.credit2;
    const put2 = { sched_id: c2, cmd: DomctlSchedOp.putinfo, credit2_weight: 512, credit2_cap: 50 };
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, put2), 0);
    assert.deepEqual(pools.getDomainParams(id), { kind: "credit2", weight: 512, cap: 50 });
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, credit2_weight: 0, credit2_cap: 0 }),
      0,
    );
    assert.deepEqual(pools.getDomainParams(id), { kind: "credit2", weight: 512, cap: 0 }, "weight 0 = unchanged");
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { sched_id: c2, cmd: DomctlSchedOp.getinfo }),
      0,
    );
    const g = get(dom0, XenDomctlSchedulerOp, U);
    assert.deepEqual([g.credit2_weight, g.credit2_cap], [512, 0]);
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, credit2_cap: 200 }), 0);
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, credit2_cap: 201 }),
      -Errno.EINVAL,
      "cap above 100 x nr_vcpus",
    );
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, sched_id: XEN_SCHEDULER.rtds }),
      -Errno.EINVAL,
    );
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, cmd: 9 }), -Errno.EINVAL);
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...put2, cmd: DomctlSchedOp.getvcpuinfo }),
      -Errno.EINVAL,
      "credit2 has no per-vCPU parameters",
    );

    // An RTDS pool with pCPU 3, and the domain moved there.
    put(dom0, XenSysctlCpupoolOp, {}, SU);
    assert.equal(
      sysctl(dom0, SysctlCmd.cpupool_op, XenSysctlCpupoolOp, { op: CpupoolOp.rmcpu, cpupool_id: 0, cpu: 3 }),
      0,
    );
    const rt = XEN_SCHEDULER.rtds;
    assert.equal(
      sysctl(dom0, SysctlCmd.cpupool_op, XenSysctlCpupoolOp, {
        op: CpupoolOp.create,
        cpupool_id: XEN_SYSCTL_CPUPOOL_PAR_ANY,
        sched_id: rt,
      }),
      0,
    );
    const poolId = get(dom0, XenSysctlCpupoolOp, SU).cpupool_id;
    assert.equal(poolId, 1);
    sysctl(dom0, SysctlCmd.cpupool_op, XenSysctlCpupoolOp, { op: CpupoolOp.addcpu, cpupool_id: 1, cpu: 3 });
    assert.equal(
      sysctl(dom0, SysctlCmd.cpupool_op, XenSysctlCpupoolOp, { op: CpupoolOp.movedomain, cpupool_id: 1, domid: id }),
      0,
    );
    const putRt = { sched_id: rt, cmd: DomctlSchedOp.putinfo, rtds_period: 20000, rtds_budget: 5000 };
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, putRt), 0);
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { ...putRt, rtds_budget: 0 }),
      -Errno.EINVAL,
    );
    // vCPU 1 gets its own parameters with extratime.
    put(dom0, XenDomctlSchedparamVcpu, { vcpuid: 1, rtds_period: 10000, rtds_budget: 1000, rtds_flags: 1 }, BUF);
    const v = { sched_id: rt, cmd: DomctlSchedOp.putvcpuinfo, v_vcpus: BUF, v_nr_vcpus: 1 };
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, v), 0);
    assert.equal(get(dom0, XenDomctlSchedulerOp, U).v_nr_vcpus, 1);
    assert.deepEqual(pools.getVcpuParams(id, 1), { kind: "rtds", periodUs: 10000, budgetUs: 1000, extratime: true });
    put(dom0, XenDomctlSchedparamVcpu, { vcpuid: 0 }, BUF);
    put(dom0, XenDomctlSchedparamVcpu, { vcpuid: 1 }, BUF + 16);
    put(dom0, XenDomctlSchedparamVcpu, { vcpuid: 9 }, BUF + 32);
    const gv = { ...v, cmd: DomctlSchedOp.getvcpuinfo, v_nr_vcpus: 3 };
    assert.equal(domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, gv), -Errno.EINVAL, "vCPU 9");
    assert.equal(get(dom0, XenDomctlSchedulerOp, U).v_nr_vcpus, 2, "two elements done");
    const e0 = get(dom0, XenDomctlSchedparamVcpu, BUF);
    const e1 = get(dom0, XenDomctlSchedparamVcpu, BUF + 16);
    assert.deepEqual([e0.rtds_period, e0.rtds_budget, e0.rtds_flags], [20000, 5000, 0]);
    assert.deepEqual([e1.rtds_period, e1.rtds_budget, e1.rtds_flags], [10000, 1000, XEN_DOMCTL_SCHEDRT_EXTRA]);
    assert.equal(
      domctl(dom0, DomctlCmd.scheduler_op, id, XenDomctlSchedulerOp, { sched_id: rt, cmd: DomctlSchedOp.getinfo }),
      0,
    );
    const gi = get(dom0, XenDomctlSchedulerOp, U);
    assert.deepEqual([gi.rtds_period, gi.rtds_budget], [20000, 5000]);
  });

  it("destroydomain drops the domain from its pool and returns every frame", () => {
    const { hv, dom0, pools, allocator } = setup();
    const before = allocator.allocatedFrames;
    const id = create(dom0);
    assert.equal(domctl(dom0, DomctlCmd.unpausedomain, id), 0);
    assert.equal(domctl(dom0, DomctlCmd.destroydomain, id), 0);
    assert.equal(hv.domains.get(id), undefined);
    assert.equal(pools.poolOfDomain(id), undefined);
    assert.equal(allocator.allocatedFrames, before);
    assert.equal(domctl(dom0, DomctlCmd.destroydomain, id), -Errno.ESRCH);
    assert.equal(domctl(dom0, DomctlCmd.destroydomain, 0), -Errno.EINVAL, "not itself");
  });

  it("envelope: -EFAULT, -EACCES for another interface version, -EPERM unprivileged, -ENOSYS", () => {
    const { hv, dom0 } = setup();
    const domU = makeDomain(hv, {}, 8);
    assert.equal(dispatchHypercall(dom0, 0, Hypercall.domctl, 0x1000, 0, 0), -Errno.EFAULT);
    assert.equal(dispatchHypercall(dom0, 0, Hypercall.domctl, ramGpa(8) - 100, 0, 0), -Errno.EFAULT);
    assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, 0, undefined, {}, 0x14), -Errno.EACCES);
    for (const cmd of [DomctlCmd.createdomain, DomctlCmd.pausedomain, DomctlCmd.getdomaininfo, DomctlCmd.max_mem]) {
      assert.equal(domctl(domU, cmd, domU.domid), -Errno.EPERM);
    }
    assert.equal(sysctl(domU, SysctlCmd.physinfo), -Errno.EPERM);
    assert.equal(domctl(dom0, DomctlCmd.shadow_op, domU.domid), -Errno.ENOSYS);
    assert.equal(sysctl(dom0, 2), -Errno.ENOSYS);
    // Without control hooks, the ops that need the scheduling layer are -ENOSYS.
    hv.control = undefined;
    assert.equal(create(dom0), -Errno.ENOSYS);
    assert.equal(domctl(dom0, DomctlCmd.pausedomain, domU.domid), -Errno.ENOSYS);
    assert.equal(sysctl(dom0, SysctlCmd.sched_id, XenSysctlSchedId), -Errno.ENOSYS);
    assert.equal(domctl(dom0, DomctlCmd.getdomaininfo, domU.domid), 0);
    assert.equal(sysctl(dom0, SysctlCmd.physinfo, XenSysctlPhysinfo), 0);
  });
});

describe("sysctl through guest memory, with CpupoolControl", () => {
  it("physinfo, sched_id, getdomaininfolist", () => {
    const { hv, dom0, allocator, memory } = setup();
    const a = create(dom0);
    const b = create(dom0);
    assert.equal(sysctl(dom0, SysctlCmd.physinfo, XenSysctlPhysinfo, { hw_cap0: 7 }), 0);
    const p = get(dom0, XenSysctlPhysinfo, SU);
    assert.deepEqual([p.nr_cpus, p.max_cpu_id, p.cpu_khz, p.threads_per_core, p.nr_nodes], [4, 3, 10000, 1, 1]);
    assert.deepEqual([p.total_pages, p.free_pages, p.hw_cap0], [memory.totalFrames, allocator.freeFrames, 0]);
    assert.equal(sysctl(dom0, SysctlCmd.sched_id, XenSysctlSchedId), 0);
    assert.equal(get(dom0, XenSysctlSchedId, SU).sched_id, XEN_SCHEDULER.credit2);
    const list = { first_domain: 1, max_domains: 10, buffer: BUF };
    assert.equal(sysctl(dom0, SysctlCmd.getdomaininfolist, XenSysctlGetdomaininfolist, list), 0);
    assert.equal(get(dom0, XenSysctlGetdomaininfolist, SU).num_domains, 2);
    assert.deepEqual(
      [0, 1].map((i) => get(dom0, XenDomctlGetdomaininfo, BUF + i * 120).domain),
      [a, b],
    );
    assert.equal(
      sysctl(dom0, SysctlCmd.getdomaininfolist, XenSysctlGetdomaininfolist, {
        ...list,
        first_domain: 0,
        max_domains: 1,
      }),
      0,
    );
    assert.equal(get(dom0, XenSysctlGetdomaininfolist, SU).num_domains, 1);
    assert.equal(get(dom0, XenDomctlGetdomaininfo, BUF).domain, 0);
    assert.equal(
      sysctl(dom0, SysctlCmd.getdomaininfolist, XenSysctlGetdomaininfolist, { ...list, buffer: 0x1000 }),
      -Errno.EFAULT,
    );
    assert.equal(get(dom0, XenSysctlGetdomaininfolist, SU).num_domains, 0);
    assert.equal(hv.domains.count, 3);
  });

  it("cpupool_op: create, info, addcpu, rmcpu, freeinfo, movedomain, destroy", () => {
    const { dom0, pools } = setup();
    const id = create(dom0);
    const op = (v: Partial<StructValues<keyof typeof XenSysctlCpupoolOp.fields>>) =>
      sysctl(dom0, SysctlCmd.cpupool_op, XenSysctlCpupoolOp, { cpumap_bitmap: BUF, cpumap_nr_bits: 8, ...v });
    assert.equal(op({ op: CpupoolOp.create, cpupool_id: 4, sched_id: XEN_SCHEDULER.null }), 0);
    assert.equal(get(dom0, XenSysctlCpupoolOp, SU).cpupool_id, 4);
    assert.equal(op({ op: CpupoolOp.create, cpupool_id: 4, sched_id: XEN_SCHEDULER.null }), -Errno.EEXIST);
    assert.equal(op({ op: CpupoolOp.create, cpupool_id: 5, sched_id: XEN_SCHEDULER.credit }), -Errno.ENOENT);
    assert.equal(op({ op: CpupoolOp.addcpu, cpupool_id: 4, cpu: XEN_SYSCTL_CPUPOOL_PAR_ANY }), -Errno.ENODEV);
    assert.equal(op({ op: CpupoolOp.addcpu, cpupool_id: 4, cpu: 2 }), -Errno.ENODEV, "pCPU 2 is in pool 0");
    assert.equal(op({ op: CpupoolOp.rmcpu, cpupool_id: 4, cpu: 2 }), -Errno.ENODEV);
    assert.equal(op({ op: CpupoolOp.rmcpu, cpupool_id: 0, cpu: 0 }), -Errno.EINVAL, "the boot pCPU");
    assert.equal(op({ op: CpupoolOp.rmcpu, cpupool_id: 0, cpu: XEN_SYSCTL_CPUPOOL_PAR_ANY }), 0);
    assert.equal(op({ op: CpupoolOp.rmcpu, cpupool_id: 0, cpu: 2 }), 0);
    assert.equal(op({ op: CpupoolOp.freeinfo }), 0);
    assert.deepEqual(bits(dom0, BUF), [2, 3]);
    assert.equal(op({ op: CpupoolOp.addcpu, cpupool_id: 4, cpu: XEN_SYSCTL_CPUPOOL_PAR_ANY }), 0);
    assert.equal(op({ op: CpupoolOp.movedomain, cpupool_id: 4, domid: id }), 0);
    assert.equal(op({ op: CpupoolOp.movedomain, cpupool_id: 4, domid: 0 }), -Errno.EPERM, "not the caller");
    assert.equal(op({ op: CpupoolOp.movedomain, cpupool_id: 9, domid: id }), -Errno.ENOENT);
    assert.equal(op({ op: CpupoolOp.movedomain, cpupool_id: 4, domid: 999 }), -Errno.ESRCH);
    // info(1) finds the next pool: 4.
    assert.equal(op({ op: CpupoolOp.info, cpupool_id: 1 }), 0);
    const i = get(dom0, XenSysctlCpupoolOp, SU);
    assert.deepEqual([i.cpupool_id, i.sched_id, i.n_dom], [4, XEN_SCHEDULER.null, 1]);
    assert.deepEqual(bits(dom0, BUF), [2]);
    assert.equal(op({ op: CpupoolOp.info, cpupool_id: 5 }), -Errno.ENOENT);
    assert.equal(op({ op: CpupoolOp.destroy, cpupool_id: 4 }), -Errno.EBUSY);
    assert.equal(op({ op: CpupoolOp.movedomain, cpupool_id: 0, domid: id }), 0);
    assert.equal(op({ op: CpupoolOp.rmcpu, cpupool_id: 4, cpu: 2 }), 0);
    assert.equal(op({ op: CpupoolOp.destroy, cpupool_id: 4 }), 0);
    assert.deepEqual(pools.poolIds(), [0]);
    assert.equal(op({ op: CpupoolOp.destroy, cpupool_id: 4 }), -Errno.ENOENT);
    assert.equal(op({ op: 99 }), -Errno.ENOSYS);
    // A bitmap that cannot be written is -EFAULT.
    assert.equal(op({ op: CpupoolOp.freeinfo, cpumap_bitmap: 0x1000 }), -Errno.EFAULT);
  });

  it("scheduler_op: credit2's pool-wide ratelimit", () => {
    const { dom0 } = setup();
    const c2 = XEN_SCHEDULER.credit2;
    const s = (v: Partial<StructValues<keyof typeof XenSysctlSchedulerOp.fields>>) =>
      sysctl(dom0, SysctlCmd.scheduler_op, XenSysctlSchedulerOp, v);
    assert.equal(s({ cpupool_id: 0, sched_id: c2, cmd: SysctlSchedOp.putinfo, sched_credit2_ratelimit_us: 2000 }), 0);
    assert.equal(s({ cpupool_id: 0, sched_id: c2, cmd: SysctlSchedOp.getinfo }), 0);
    assert.equal(get(dom0, XenSysctlSchedulerOp, SU).sched_credit2_ratelimit_us, 2000);
    assert.equal(
      s({ cpupool_id: 0, sched_id: c2, cmd: SysctlSchedOp.putinfo, sched_credit2_ratelimit_us: 5 }),
      -Errno.EINVAL,
    );
    assert.equal(s({ cpupool_id: 0, sched_id: XEN_SCHEDULER.rtds, cmd: SysctlSchedOp.getinfo }), -Errno.EINVAL);
    assert.equal(s({ cpupool_id: 3, sched_id: c2, cmd: SysctlSchedOp.getinfo }), -Errno.ESRCH);
    assert.equal(s({ cpupool_id: 0, sched_id: c2, cmd: 7 }), -Errno.EINVAL);
  });
});
