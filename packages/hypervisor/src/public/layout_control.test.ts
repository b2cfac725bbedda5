import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  XEN_DOMCTL_U_OFFSET,
  XEN_SYSCTL_U_OFFSET,
  XenctlBitmap,
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
} from "./layout.js";
import { check, z } from "./layout_check.js";

describe("domctl/sysctl layouts (Arm ABI, 32-bit guest, interface version 0x15)", () => {
  it("xen_domctl is 144 bytes: cmd, interface_version, domain, then the union at 16", () => {
    check(XenDomctl, { cmd: 1, interface_version: 0x15, domain: 0x7ff0 }, `01 00 00 00  15 00 00 00  f0 7f ${z(134)}`);
    assert.equal(XEN_DOMCTL_U_OFFSET, 16);
  });

  it("xen_sysctl is 136 bytes: cmd, interface_version, then the union at 8", () => {
    check(XenSysctl, { cmd: 18, interface_version: 0x15 }, `12 00 00 00  15 00 00 00 ${z(128)}`);
    assert.equal(XEN_SYSCTL_U_OFFSET, 8);
  });

  it("xenctl_bitmap is a handle and nr_bits (16 bytes)", () => {
    check(XenctlBitmap, { bitmap: 0x80001000, nr_bits: 4 }, `00 10 00 80 00 00 00 00  04 00 00 00 ${z(4)}`);
  });

  it("xen_domctl_createdomain is 68 bytes with handle[16] at 4 and Arm's arch config at 56", () => {
    check(
      XenDomctlCreatedomain,
      {
        ssidref: 0,
        flags: 3,
        iommu_opts: 0,
        max_vcpus: 2,
        max_evtchn_port: 1023,
        max_grant_frames: -1,
        max_maptrack_frames: 64,
        grant_opts: 1,
        vmtrace_size: 0,
        cpupool_id: 5,
        arch_gic_version: 2,
        arch_tee_type: 1,
        arch_nr_spis: 32,
        arch_clock_frequency: 0,
      },
      `00 00 00 00 ${z(16)}  03 00 00 00  00 00 00 00  02 00 00 00  ff 03 00 00  ff ff ff ff
       40 00 00 00  01 00 00 00  00 00 00 00  05 00 00 00  02 00 01 00  20 00 00 00  00 00 00 00`,
    );
  });

  it("xen_domctl_getdomaininfo is 120 bytes: 64-bit counters from 8, handle at 76, cpupool at 92, gpaddr_bits at 96", () => {
    check(
      XenDomctlGetdomaininfo,
      {
        domain: 5,
        flags: 0x10a,
        tot_pages: 0x100,
        max_pages: 0x400,
        shared_info_frame: 0x1234,
        cpu_time: 2 ** 32,
        nr_online_vcpus: 2,
        max_vcpu_id: 1,
        ssidref: 0,
        cpupool: 0xffffffff,
        gpaddr_bits: 32,
      },
      `05 00 00 00  0a 01 00 00  00 01 00 00 00 00 00 00  00 04 00 00 00 00 00 00 ${z(24)}
       34 12 00 00 00 00 00 00  00 00 00 00 01 00 00 00  02 00 00 00  01 00 00 00  00 00 00 00 ${z(16)}
       ff ff ff ff  20 ${z(7)} ${z(16)}`,
    );
  });

  it("max_mem, max_vcpus, getvcpuinfo, set_virq_handler", () => {
    check(XenDomctlMaxMem, { max_memkb: 0x1_0000_0400 }, "00 04 00 00 01 00 00 00");
    check(XenDomctlMaxVcpus, { max: 4 }, "04 00 00 00");
    check(
      XenDomctlGetvcpuinfo,
      { vcpu: 1, online: 1, blocked: 0, running: 1, cpu_time: 0x1_0000_0002, cpu: 3 },
      `01 00 00 00  01 00 01 00  02 00 00 00 01 00 00 00  03 00 00 00 ${z(4)}`,
    );
    check(XenDomctlSetVirqHandler, { virq: 3 }, "03 00 00 00");
  });

  it("xen_domctl_vcpuaffinity is 40 bytes: two xenctl_bitmaps at 8 and 24", () => {
    check(
      XenDomctlVcpuaffinity,
      {
        vcpu: 1,
        flags: 3,
        cpumap_hard_bitmap: 0x80002000,
        cpumap_hard_nr_bits: 8,
        cpumap_soft_bitmap: 0x80002008,
        cpumap_soft_nr_bits: 16,
      },
      `01 00 00 00  03 00 00 00  00 20 00 80 00 00 00 00  08 00 00 00 00 00 00 00
       08 20 00 80 00 00 00 00  10 00 00 00 00 00 00 00`,
    );
  });

  it("xen_domctl_scheduler_op is 24 bytes with its union at 8 (credit2, rtds, v)", () => {
    check(
      XenDomctlSchedulerOp,
      { sched_id: 6, cmd: 0, credit2_weight: 512, credit2_cap: 50 },
      `06 00 00 00  00 00 00 00  00 02 32 00 ${z(12)}`,
    );
    check(
      XenDomctlSchedulerOp,
      { sched_id: 8, cmd: 1, rtds_period: 10000, rtds_budget: 4000, rtds_flags: 1 },
      `08 00 00 00  01 00 00 00  10 27 00 00  a0 0f 00 00  01 00 00 00 ${z(4)}`,
    );
    check(
      XenDomctlSchedulerOp,
      { sched_id: 8, cmd: 2, v_vcpus: 0x80003000, v_nr_vcpus: 2 },
      `08 00 00 00  02 00 00 00  00 30 00 80 00 00 00 00  02 00 00 00 ${z(4)}`,
    );
    check(
      XenDomctlSchedparamVcpu,
      { rtds_period: 100, rtds_budget: 50, rtds_flags: 1, vcpuid: 3 },
      "64 00 00 00  32 00 00 00  01 00 00 00  03 00 00 00",
    );
  });

  it("xen_sysctl_physinfo is 112 bytes with the page counts 8-aligned from 40", () => {
    check(
      XenSysctlPhysinfo,
      {
        threads_per_core: 1,
        cores_per_socket: 4,
        nr_cpus: 4,
        max_cpu_id: 3,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: 10000,
        capabilities: 0x109,
        total_pages: 0x2000,
        free_pages: 0x1000,
        max_mfn: 0x1fff,
      },
      `01 00 00 00  04 00 00 00  04 00 00 00  03 00 00 00  01 00 00 00  00 00 00 00  10 27 00 00  09 01 00 00
       ${z(8)}  00 20 00 00 00 00 00 00  00 10 00 00 00 00 00 00 ${z(16)}  ff 1f 00 00 00 00 00 00 ${z(32)}`,
    );
  });

  it("sched_id, getdomaininfolist, cpupool_op, scheduler_op", () => {
    check(XenSysctlSchedId, { sched_id: 6 }, "06 00 00 00");
    check(
      XenSysctlGetdomaininfolist,
      { first_domain: 1, max_domains: 10, buffer: 0x80002000, num_domains: 3 },
      `01 00 00 00  0a 00 00 00  00 20 00 80 00 00 00 00  03 00 00 00 ${z(4)}`,
    );
    check(
      XenSysctlCpupoolOp,
      {
        op: 1,
        cpupool_id: 0xffffffff,
        sched_id: 8,
        domid: 7,
        cpu: 2,
        n_dom: 0,
        cpumap_bitmap: 0x80002000,
        cpumap_nr_bits: 8,
      },
      `01 00 00 00  ff ff ff ff  08 00 00 00  07 00 00 00  02 00 00 00  00 00 00 00
       00 20 00 80 00 00 00 00  08 00 00 00 ${z(4)}`,
    );
    check(
      XenSysctlSchedulerOp,
      { cpupool_id: 1, sched_id: 6, cmd: 0, sched_credit2_ratelimit_us: 1000 },
      `01 00 00 00  06 00 00 00  00 00 00 00 ${z(4)}  e8 03 00 00 ${z(12)}`,
    );
  });
});
