import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { P2M_NONE, p2mEntryMfn } from "@xenon/hw";
import { CpupoolControl } from "../control_cpupools.js";
import type { Domain } from "../domain.js";
import { foreignAccessInUse, grantAccess } from "../grant_table/granter.js";
import { GUEST_RAM_BASE_GFN } from "../p2m/types.js";
import { Errno } from "../public/errno.js";
import { EvtchnOp, EvtchnStat } from "../public/event_channel.js";
import {
  GNTCOPY_source_gref,
  GNTMAP_host_map,
  Gntst,
  GnttabOp,
  GTF_reading,
  GTF_writing,
} from "../public/grant_table.js";
import {
  DomidArg,
  decode,
  EvtchnAllocUnbound,
  EvtchnBindInterdomain,
  EvtchnBindVirq,
  EvtchnPort,
  EvtchnStatus,
  encode,
  GnttabCopy,
  GnttabGetVersion,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabSetVersion,
  GnttabUnmapGrantRef,
  SchedPoll,
  SchedRemoteShutdown,
  SchedShutdown,
  type StructLayout,
  type StructValues,
  VcpuRegisterVcpuInfo,
  VcpuSetSingleshotTimer,
  XenAddToPhysmap,
  XenFeatureInfo,
  XenHvmParam,
  XenMemoryReservation,
} from "../public/layout.js";
import { XenMapSpace, XenMem } from "../public/memory.js";
import {
  ConsoleIo,
  DOMID_SELF,
  DomctlCdf,
  DomctlCmd,
  HvmOp,
  HvmParam,
  Hypercall,
  SchedOp,
  Shutdown,
  SysctlCmd,
  VcpuOp,
  Virq,
  XEN_DOMCTL_INTERFACE_VERSION,
  XenFeat,
  XenVer,
} from "../public/xen.js";
import { Cpupools } from "../sched/cpupool.js";
import { makeDomain, makeHost, ramGpa, rng } from "../test_support.js";
import { dispatchHypercall } from "./dispatch.js";

const RAM = GUEST_RAM_BASE_GFN;
/** Argument scratch space in every test domain: RAM page 1. */
const ARG = ramGpa(1);

function put<F extends string>(d: Domain, layout: StructLayout<F>, v: Partial<StructValues<F>>, at = ARG): number {
  assert.equal(d.guest.copyToGuest(at, encode(layout, v)), 0);
  return at;
}

function get<F extends string>(d: Domain, layout: StructLayout<F>, at = ARG): StructValues<F> {
  const b = d.guest.copyFromGuest(at, layout.size);
  assert.ok(b instanceof Uint8Array);
  return decode(layout, b);
}

const call = (d: Domain, nr: number, a0 = 0, a1 = 0, a2 = 0, vcpu = 0) => dispatchHypercall(d, vcpu, nr, a0, a1, a2);

function setup() {
  const host = makeHost();
  const dom0 = makeDomain(host.hv, { domid: 0, flags: { privileged: true, hardware: true } }, 8);
  const a = makeDomain(host.hv, { flags: { isConsole: true } }, 8);
  const b = makeDomain(host.hv, {}, 8);
  return { ...host, dom0, a, b };
}

describe("hypercall dispatch (guest ABI)", () => {
  it("xen_version: version, extraversion, features, pagesize", () => {
    const { a, dom0 } = setup();
    assert.equal(call(a, Hypercall.xen_version, XenVer.version), (4 << 16) | 17);
    assert.equal(call(a, Hypercall.xen_version, XenVer.extraversion, ARG), 0);
    assert.deepEqual(a.guest.copyFromGuest(ARG, 3), Uint8Array.from([0x2e, 0x30, 0]));
    put(a, XenFeatureInfo, { submap_idx: 0 });
    assert.equal(call(a, Hypercall.xen_version, XenVer.get_features, ARG), 0);
    const f = get(a, XenFeatureInfo).submap;
    assert.ok(f & (1 << XenFeat.auto_translated_physmap));
    assert.equal(f & (1 << XenFeat.dom0), 0);
    put(dom0, XenFeatureInfo, { submap_idx: 0 });
    call(dom0, Hypercall.xen_version, XenVer.get_features, ARG);
    assert.ok(get(dom0, XenFeatureInfo).submap & (1 << XenFeat.dom0));
    put(a, XenFeatureInfo, { submap_idx: 1 });
    assert.equal(call(a, Hypercall.xen_version, XenVer.get_features, ARG), -Errno.EINVAL);
    assert.equal(call(a, Hypercall.xen_version, XenVer.pagesize), 4096);
    assert.equal(call(a, Hypercall.xen_version, XenVer.extraversion, 0x1000), -Errno.EFAULT);
    assert.equal(call(a, Hypercall.xen_version, XenVer.build_id, ARG), -Errno.ENOSYS);
  });

  it("console_io: writes reach the domain's sink and the hypervisor ring; no rights, no console", () => {
    const { hv, a, b, dom0 } = setup();
    const out: string[] = [];
    a.console.setSink((bytes) => out.push(new TextDecoder().decode(bytes)));
    a.guest.copyToGuest(ARG, new TextEncoder().encode("hi\x1b[2J there\npartial"));
    assert.equal(call(a, Hypercall.console_io, ConsoleIo.write, 21, ARG), 0);
    assert.deepEqual(out, ["hi[2J there\n"], "escape filtered, line-buffered");
    assert.equal(call(b, Hypercall.console_io, ConsoleIo.write, 2, ARG), -Errno.EPERM);
    assert.equal(call(a, Hypercall.console_io, ConsoleIo.write, 8, 0x1000), -Errno.EFAULT);
    assert.equal(call(a, Hypercall.console_io, ConsoleIo.write, 0xffffffff, ARG), -Errno.EFAULT);
    assert.equal(call(a, Hypercall.console_io, 7, 0, ARG), -Errno.ENOSYS);
    // The control domain reads the ring (xl dmesg).
    const n = call(dom0, Hypercall.console_io, ConsoleIo.read, 100, ARG);
    assert.ok(n > 0);
    const ring = dom0.guest.copyFromGuest(ARG, n);
    assert.ok(ring instanceof Uint8Array);
    assert.match(new TextDecoder().decode(ring), new RegExp(`\\(d${a.domid}\\) hi\\[2J there`));
    assert.equal(hv.consoleRing.length, 0);
  });

  it("memory_op: populate, decrease, reservations, add_to_physmap, with Xen's extent continuation", () => {
    const { a, b } = setup();
    const list = ramGpa(2);
    [RAM + 20, RAM + 21, RAM + 30].forEach((g, i) => {
      a.guest.writeU64(list + i * 8, g);
    });
    put(a, XenMemoryReservation, { extent_start: list, nr_extents: 3, extent_order: 0, domid: DOMID_SELF });
    assert.equal(call(a, Hypercall.memory_op, XenMem.populate_physmap, ARG), 3);
    assert.notEqual(a.p2m.lookup(RAM + 30), P2M_NONE);
    put(a, DomidArg, { domid: DOMID_SELF });
    assert.equal(call(a, Hypercall.memory_op, XenMem.current_reservation, ARG), 11);
    assert.equal(call(a, Hypercall.memory_op, XenMem.maximum_reservation, ARG), 256);
    // Resume from extent 2 (cmd carries the start extent above bit 6).
    put(a, XenMemoryReservation, { extent_start: list, nr_extents: 3, extent_order: 0, domid: DOMID_SELF });
    assert.equal(call(a, Hypercall.memory_op, XenMem.decrease_reservation | (2 << 6), ARG), 3);
    assert.equal(a.p2m.lookup(RAM + 30), P2M_NONE);
    assert.notEqual(a.p2m.lookup(RAM + 20), P2M_NONE);
    // An unreadable extent list stops the op where it is.
    put(a, XenMemoryReservation, { extent_start: 0x1000, nr_extents: 3, extent_order: 0, domid: DOMID_SELF });
    assert.equal(call(a, Hypercall.memory_op, XenMem.populate_physmap, ARG), 0);
    put(a, XenMemoryReservation, { extent_start: 2 ** 32, nr_extents: 3, extent_order: 0, domid: DOMID_SELF });
    assert.equal(call(a, Hypercall.memory_op, XenMem.populate_physmap, ARG), -Errno.EFAULT);
    // Naming another domain needs privilege.
    put(a, XenMemoryReservation, { extent_start: list, nr_extents: 1, extent_order: 0, domid: b.domid });
    assert.equal(call(a, Hypercall.memory_op, XenMem.populate_physmap, ARG), -Errno.EPERM);
    put(a, DomidArg, { domid: 4000 });
    assert.equal(call(a, Hypercall.memory_op, XenMem.current_reservation, ARG), -Errno.ESRCH);
    put(a, XenAddToPhysmap, { domid: DOMID_SELF, space: XenMapSpace.shared_info, idx: 0, gpfn: 0x38000 });
    assert.equal(call(a, Hypercall.memory_op, XenMem.add_to_physmap, ARG), 0);
    assert.equal(p2mEntryMfn(a.p2m.lookup(0x38000)), a.sharedInfoMfn);
    assert.equal(call(a, Hypercall.memory_op, XenMem.increase_reservation, ARG), -Errno.ENOSYS);
    assert.equal(call(a, Hypercall.memory_op, 63, ARG), -Errno.ENOSYS);
  });

  it("event_channel_op: a full interdomain round trip through guest memory", () => {
    const { a, b, upcalls } = setup();
    put(b, EvtchnAllocUnbound, { dom: DOMID_SELF, remote_dom: a.domid });
    assert.equal(call(b, Hypercall.event_channel_op, EvtchnOp.alloc_unbound, ARG), 0);
    const pb = get(b, EvtchnAllocUnbound).port;
    assert.equal(pb, 1);
    put(a, EvtchnBindInterdomain, { remote_dom: b.domid, remote_port: pb });
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.bind_interdomain, ARG), 0);
    const pa = get(a, EvtchnBindInterdomain).local_port;
    put(a, EvtchnPort, { port: pa });
    upcalls.length = 0;
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.send, ARG), 0);
    assert.deepEqual(upcalls, [[b.domid, 0]]);
    put(b, EvtchnStatus, { dom: DOMID_SELF, port: pb });
    assert.equal(call(b, Hypercall.event_channel_op, EvtchnOp.status, ARG), 0);
    const st = get(b, EvtchnStatus);
    assert.deepEqual([st.status, st.vcpu, st.u_dom, st.interdomain_port], [EvtchnStat.interdomain, 0, a.domid, pa]);
    put(b, EvtchnStatus, { dom: a.domid, port: pa });
    assert.equal(call(b, Hypercall.event_channel_op, EvtchnOp.status, ARG), -Errno.EPERM);
    put(a, EvtchnBindVirq, { virq: Virq.TIMER, vcpu: 1 });
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.bind_virq, ARG), 0);
    assert.ok(get(a, EvtchnBindVirq).port > 0);
    put(a, EvtchnPort, { port: pa });
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.close, ARG), 0);
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.close, ARG), -Errno.EINVAL);
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.init_control, ARG), -Errno.ENOSYS);
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.set_priority, ARG), -Errno.EOPNOTSUPP);
    assert.equal(call(a, Hypercall.event_channel_op, EvtchnOp.send, 0x2000), -Errno.EFAULT);
  });

  it("grant_table_op: map, unmap and copy batches with per-element status", () => {
    const { a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 3, false);
    a.guest.writeU32(ramGpa(3, 12), 0x5eed);
    const ops = ramGpa(2);
    put(b, GnttabMapGrantRef, { host_addr: 0x40000 * 4096, flags: GNTMAP_host_map, ref: 8, dom: a.domid }, ops);
    put(b, GnttabMapGrantRef, { host_addr: 0x40001 * 4096, flags: GNTMAP_host_map, ref: 9, dom: a.domid }, ops + 32);
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.map_grant_ref, ops, 2), 0);
    const m0 = get(b, GnttabMapGrantRef, ops);
    assert.equal(m0.status, Gntst.okay);
    assert.equal(get(b, GnttabMapGrantRef, ops + 32).status, Gntst.general_error);
    assert.equal(p2mEntryMfn(b.p2m.lookup(0x40000)), a.p2m.get(RAM + 3)!.mfn);
    assert.equal(foreignAccessInUse(a.grantTable, 8), GTF_reading | GTF_writing);
    // Copy from the grant into B's own page.
    put(b, GnttabCopy, {
      source_ref: 8,
      source_domid: a.domid,
      source_offset: 12,
      dest_gmfn: RAM + 4,
      dest_domid: DOMID_SELF,
      dest_offset: 0,
      len: 4,
      flags: GNTCOPY_source_gref,
    });
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.copy, ARG, 1), 0);
    assert.equal(get(b, GnttabCopy).status, Gntst.okay);
    assert.equal(b.guest.readU32(ramGpa(4)), 0x5eed);
    put(b, GnttabUnmapGrantRef, { host_addr: 0x40000 * 4096, handle: m0.handle });
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.unmap_grant_ref, ARG, 1), 0);
    assert.equal(get(b, GnttabUnmapGrantRef).status, Gntst.okay);
    assert.equal(b.p2m.lookup(0x40000), P2M_NONE);
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0);
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.map_grant_ref, ops, 0x80000000), -Errno.EINVAL);
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.map_grant_ref, 0x1000, 1), -Errno.EFAULT);
    assert.equal(call(b, Hypercall.grant_table_op, GnttabOp.transfer, ops, 1), -Errno.ENOSYS);
  });

  it("grant_table_op: setup_table, query_size, set_version, get_version", () => {
    const { a, b, dom0 } = setup();
    const list = ramGpa(2);
    put(a, GnttabSetupTable, { dom: DOMID_SELF, nr_frames: 2, frame_list: list });
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 1), 0);
    assert.equal(get(a, GnttabSetupTable).status, Gntst.okay);
    assert.equal(a.guest.readU32(list), 0xffffffff, "INVALID_GFN: not mapped yet");
    assert.equal(a.guest.readU32(list + 4), 0xffffffff);
    put(a, GnttabSetupTable, { dom: b.domid, nr_frames: 1, frame_list: list });
    call(a, Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 1);
    assert.equal(get(a, GnttabSetupTable).status, Gntst.permission_denied);
    put(a, GnttabSetupTable, { dom: DOMID_SELF, nr_frames: 1, frame_list: 0x1000 });
    call(a, Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 1);
    assert.equal(get(a, GnttabSetupTable).status, Gntst.bad_virt_addr);
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 2), -Errno.EINVAL);
    put(dom0, GnttabQuerySize, { dom: a.domid });
    assert.equal(call(dom0, Hypercall.grant_table_op, GnttabOp.query_size, ARG, 1), 0);
    const q = get(dom0, GnttabQuerySize);
    assert.deepEqual([q.status, q.nr_frames, q.max_nr_frames], [Gntst.okay, 2, 64]);
    put(dom0, GnttabQuerySize, { dom: 4000 });
    call(dom0, Hypercall.grant_table_op, GnttabOp.query_size, ARG, 1);
    assert.equal(get(dom0, GnttabQuerySize).status, Gntst.bad_domain);
    put(a, GnttabSetVersion, { version: 2 });
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.set_version, ARG, 1), -Errno.ENOSYS);
    assert.equal(get(a, GnttabSetVersion).version, 1);
    put(a, GnttabSetVersion, { version: 1 });
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.set_version, ARG, 1), 0);
    put(a, GnttabGetVersion, { dom: DOMID_SELF });
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.get_version, ARG, 1), 0);
    assert.equal(get(a, GnttabGetVersion).version, 1);
    put(a, GnttabGetVersion, { dom: b.domid });
    assert.equal(call(a, Hypercall.grant_table_op, GnttabOp.get_version, ARG, 1), -Errno.EPERM);
  });

  it("sched_op: yield, block, poll leave requests; shutdown and remote_shutdown", () => {
    const { hv, a, b, dom0, shutdowns } = setup();
    assert.equal(call(a, Hypercall.sched_op, SchedOp.yield), 0);
    assert.deepEqual(a.vcpus[0]!.takeSchedRequest(), { op: "yield" });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.block, 0, 0, 1), 0);
    assert.deepEqual(a.vcpus[1]!.takeSchedRequest(), { op: "block" });
    // poll on two ports, neither pending: a request; then one pending: returns at once.
    const ports = ramGpa(2);
    a.guest.writeU32(ports, 1);
    a.guest.writeU32(ports + 4, 2);
    put(a, SchedPoll, { ports, nr_ports: 2, timeout: 5e9 });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.poll, ARG), 0);
    assert.deepEqual(a.vcpus[0]!.takeSchedRequest(), { op: "poll", ports: [1, 2], timeoutNs: 5e9 });
    const pb = hv.hypercalls.evtchnAllocUnbound(b.domid, DOMID_SELF, a.domid);
    const pa = hv.hypercalls.evtchnBindInterdomain(a.domid, b.domid, pb);
    a.guest.writeU32(ports, pa);
    assert.equal(call(a, Hypercall.sched_op, SchedOp.poll, ARG), 0);
    assert.equal(a.vcpus[0]!.takeSchedRequest(), null, "the new local port is already pending");
    put(a, SchedPoll, { ports, nr_ports: 129 });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.poll, ARG), -Errno.EINVAL);
    a.guest.writeU32(ports, 5000);
    put(a, SchedPoll, { ports, nr_ports: 1 });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.poll, ARG), -Errno.EINVAL);
    // remote_shutdown needs privilege.
    put(a, SchedRemoteShutdown, { domain_id: b.domid, reason: Shutdown.poweroff });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.remote_shutdown, ARG), -Errno.EPERM);
    put(dom0, SchedRemoteShutdown, { domain_id: b.domid, reason: Shutdown.reboot });
    assert.equal(call(dom0, Hypercall.sched_op, SchedOp.remote_shutdown, ARG), 0);
    assert.equal(b.shutdownCode, Shutdown.reboot);
    put(a, SchedShutdown, { reason: Shutdown.crash });
    assert.equal(call(a, Hypercall.sched_op, SchedOp.shutdown, ARG), 0);
    assert.deepEqual(a.vcpus[0]!.takeSchedRequest(), { op: "shutdown" });
    assert.deepEqual(shutdowns.at(-1), [a.domid, Shutdown.crash, "destroy"]);
    assert.equal(call(a, Hypercall.sched_op, SchedOp.watchdog, ARG), -Errno.ENOSYS);
  });

  it("vcpu_op register_vcpu_info and hvm_op params", () => {
    const { a, dom0 } = setup();
    put(a, VcpuRegisterVcpuInfo, { mfn: RAM + 5, offset: 0 });
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 1, ARG), 0);
    assert.equal(a.vcpus[1]!.placement?.gfn, RAM + 5);
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 7, ARG), -Errno.ENOENT);
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.is_up, 0, ARG), 1);
    assert.equal(call(a, Hypercall.vcpu_op, 11 /* send_nmi */, 0, ARG), -Errno.ENOSYS);
    // The single-shot timer: armed, refused in the past with VCPU_SSHOTTMR_future, stopped.
    const v0 = a.vcpus[0]!;
    const gen = v0.timerGeneration;
    put(a, VcpuSetSingleshotTimer, { timeout_abs_ns: a.hv.now() + 1e9, flags: 0 });
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG), 0);
    assert.ok(v0.singleshotDeadlineNs !== null && v0.timerGeneration === gen + 1);
    put(a, VcpuSetSingleshotTimer, { timeout_abs_ns: 1, flags: 1 });
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG), -Errno.ETIME);
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.stop_singleshot_timer, 0, ARG), 0);
    assert.equal(v0.singleshotDeadlineNs, null);
    assert.equal(call(a, Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, 0x10), -Errno.EFAULT);
    put(dom0, XenHvmParam, { domid: a.domid, index: HvmParam.STORE_PFN, value: RAM + 7 });
    assert.equal(call(dom0, Hypercall.hvm_op, HvmOp.set_param, ARG), 0);
    put(a, XenHvmParam, { domid: DOMID_SELF, index: HvmParam.STORE_PFN });
    assert.equal(call(a, Hypercall.hvm_op, HvmOp.get_param, ARG), 0);
    assert.equal(get(a, XenHvmParam).value, RAM + 7);
    put(a, XenHvmParam, { domid: DOMID_SELF, index: HvmParam.STORE_PFN, value: 1 });
    assert.equal(call(a, Hypercall.hvm_op, HvmOp.set_param, ARG), -Errno.EPERM);
    put(a, XenHvmParam, { domid: DOMID_SELF, index: 39 });
    assert.equal(call(a, Hypercall.hvm_op, HvmOp.get_param, ARG), -Errno.EINVAL);
  });

  it("unknown hypercalls are -ENOSYS; a dying caller is -ESRCH", () => {
    const { hv, a } = setup();
    for (const nr of [0, 1, 13, 48, 1000, 0xffffffff]) assert.equal(call(a, nr), -Errno.ENOSYS, String(nr));
    assert.equal(dispatchHypercall(a, 9, Hypercall.xen_version, 0, 0, 0), -Errno.ESRCH);
    hv.domains.destroy(a.domid);
    assert.equal(call(a, Hypercall.xen_version), -Errno.ESRCH);
  });
});

describe("hypercall fuzzing: garbage never throws", () => {
  it("random numbers, huge and negative pointers to every hypercall and sub-op", () => {
    const { hv, a, b, dom0, allocator } = setup();
    // Give the fuzzer some state to trip over: a grant, a channel, mapped frames.
    grantAccess(a.grantTable, 8, b.domid, RAM + 3, false);
    hv.hypercalls.evtchnAllocUnbound(b.domid, DOMID_SELF, a.domid);
    const r = rng(0xdecaf);
    const ramLo = ramGpa(0);
    const pick = (): number => {
      switch (r() % 8) {
        case 0:
          return r();
        case 1:
          return -(r() % 4096);
        case 2:
          return ramLo + (r() % (8 * 4096)); // inside RAM: the struct is read, its fields are garbage
        case 3:
          return 0xffffffff;
        case 4:
          return r() % 64;
        case 5:
          return ramLo + 8 * 4096 - (r() % 48); // straddles the end of RAM
        case 6:
          return 2 ** 31 + (r() % 16);
        default:
          return 0;
      }
    };
    const nrs = [
      Hypercall.memory_op,
      Hypercall.xen_version,
      Hypercall.console_io,
      Hypercall.grant_table_op,
      Hypercall.vcpu_op,
      Hypercall.sched_op,
      Hypercall.event_channel_op,
      Hypercall.hvm_op,
      Hypercall.sysctl,
      Hypercall.domctl,
      r(),
    ];
    const doms = [a, b, dom0];
    for (let i = 0; i < 20000; i++) {
      // Scribble over guest RAM now and then so structs carry random values.
      if (i % 50 === 0) {
        for (const d of doms) {
          const junk = new Uint8Array(256).map(() => r() & 0xff);
          d.guest.copyToGuest(ramGpa(r() % 8, r() % 3840), junk);
        }
      }
      const d = doms[r() % doms.length]!;
      if (d.dying) continue;
      const nr = nrs[r() % nrs.length]!;
      const sub = r() % 3 === 0 ? r() : r() % 16;
      const rc = dispatchHypercall(d, r() % 3, nr, sub, pick(), pick(), pick(), pick(), pick());
      assert.ok(Number.isInteger(rc), `nr ${nr} sub ${sub} -> ${rc}`);
    }
    // Everything still tears down to zero.
    for (const d of hv.domains.list()) hv.domains.destroy(d.domid);
    assert.equal(hv.domains.count, 0);
    assert.equal(allocator.allocatedFrames, 0);
  });

  it("domctl and sysctl: well-formed envelopes with garbage unions, with and without control hooks", () => {
    const { hv, a, b, dom0, allocator } = setup();
    const pools = new Cpupools({ pcpus: [0, 1, 2, 3].map((id) => ({ id, cls: "big", speed: 1024 })) });
    for (const d of [dom0, a, b]) pools.addDomain(d.domid, d.maxVcpus, 0, 0);
    pools.create(1, "rt", "rtds");
    const control = new CpupoolControl(pools, { now: () => 0 });
    const r = rng(0xc0ffee);
    const domctlCmds = [...Object.values(DomctlCmd), 0, 7, r()];
    const sysctlCmds = [...Object.values(SysctlCmd), 0, r()];
    const doms = [a, b, dom0, dom0, dom0];
    for (let i = 0; i < 20000; i++) {
      if (i % 2000 === 0) hv.control = i % 4000 === 0 ? control : undefined;
      const d = doms[r() % doms.length]!;
      if (d.dying) continue;
      const isDomctl = r() % 2 === 0;
      const at = ramGpa(r() % 8, (r() % 512) * 8);
      // Small words mostly, so fields land on real pools, vCPUs, pCPUs, flags and sub-ops.
      const body = new Uint8Array(144);
      const words = new DataView(body.buffer);
      for (let w = 0; w < 36; w++) words.setUint32(w * 4, r() % 4 === 0 ? r() : r() % 10, true);
      d.guest.copyToGuest(at, body);
      const cmds = isDomctl ? domctlCmds : sysctlCmds;
      const cmd = cmds[r() % cmds.length]!;
      d.guest.writeU32(at, cmd);
      if (isDomctl && cmd === DomctlCmd.createdomain && r() % 2 === 0) {
        d.guest.writeU32(at + 16 + 20, DomctlCdf.hvm | DomctlCdf.hap); // flags
        d.guest.writeU32(at + 16 + 44, 1); // grant_opts
      }
      d.guest.writeU32(at + 4, r() % 16 === 0 ? r() : XEN_DOMCTL_INTERFACE_VERSION);
      const ids = hv.domains.list().map((x) => x.domid);
      if (isDomctl) d.guest.writeU16(at + 8, r() % 8 === 0 ? r() & 0xffff : ids[r() % ids.length]!);
      // Handles (bitmaps, arrays, buffers) inside the union: in RAM, or not.
      const u = isDomctl ? 16 : 8;
      for (const off of [u + 8, u + 24]) {
        if (r() % 2 === 0) d.guest.writeU64(at + off, r() % 4 === 0 ? r() : ramGpa(r() % 8, r() % 4096));
      }
      const rc = dispatchHypercall(d, 0, isDomctl ? Hypercall.domctl : Hypercall.sysctl, at, 0, 0);
      assert.ok(Number.isInteger(rc), `${isDomctl ? "domctl" : "sysctl"} -> ${rc}`);
    }
    hv.control = undefined;
    for (const d of hv.domains.list()) hv.domains.destroy(d.domid);
    assert.equal(hv.domains.count, 0);
    assert.equal(allocator.allocatedFrames, 0);
  });
});
