import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DomidArg,
  EvtchnAllocUnbound,
  EvtchnBindInterdomain,
  EvtchnBindIpi,
  EvtchnBindVcpu,
  EvtchnBindVirq,
  EvtchnPort,
  EvtchnStatus,
  GnttabCopy,
  GnttabGetVersion,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabSetVersion,
  GnttabUnmapGrantRef,
  GrantEntryV1,
  SchedPoll,
  SchedRemoteShutdown,
  SchedShutdown,
  SHARED_INFO_EVTCHN_MASK_OFFSET,
  SHARED_INFO_EVTCHN_PENDING_OFFSET,
  SharedInfo,
  VcpuInfo,
  VcpuRegisterVcpuInfo,
  VcpuTimeInfo,
  XenAddToPhysmap,
  XenFeatureInfo,
  XenHvmParam,
  XenMemoryReservation,
  XenRemoveFromPhysmap,
} from "./layout.js";
import { check } from "./layout_check.js";

describe("struct layouts (Arm ABI, 32-bit guest)", () => {
  it("gnttab_map_grant_ref is 32 bytes with host_addr and dev_bus_addr 8-aligned", () => {
    check(
      GnttabMapGrantRef,
      {
        host_addr: 0x1_2345_6000,
        flags: 2,
        ref: 0x11223344,
        dom: 7,
        status: -3,
        handle: 0xaabbccdd,
        dev_bus_addr: 0x88_7766_5544,
      },
      `00 60 45 23 01 00 00 00  02 00 00 00  44 33 22 11
       07 00  fd ff  dd cc bb aa  44 55 66 77 88 00 00 00`,
    );
  });

  it("gnttab_unmap_grant_ref is 24 bytes", () => {
    check(
      GnttabUnmapGrantRef,
      { host_addr: 0x40000000, dev_bus_addr: 0, handle: 5, status: -4 },
      `00 00 00 40 00 00 00 00  00 00 00 00 00 00 00 00  05 00 00 00  fc ff 00 00`,
    );
  });

  it("gnttab_copy is 40 bytes: two 16-byte copy_ptrs, then len, flags, status", () => {
    check(
      GnttabCopy,
      {
        source_ref: 0x0102,
        source_domid: 3,
        source_offset: 0x10,
        dest_gmfn: 0x80005,
        dest_domid: 0x7ff0,
        dest_offset: 0xffe,
        len: 0x200,
        flags: 1,
        status: -10,
      },
      `02 01 00 00 00 00 00 00  03 00  10 00  00 00 00 00
       05 00 08 00 00 00 00 00  f0 7f  fe 0f  00 00 00 00
       00 02  01 00  f6 ff  00 00`,
    );
  });

  it("gnttab_setup_table, query_size, set_version, get_version", () => {
    check(
      GnttabSetupTable,
      { dom: 0x7ff0, nr_frames: 4, status: -1, frame_list: 0x80001000 },
      `f0 7f 00 00  04 00 00 00  ff ff 00 00 00 00 00 00  00 10 00 80 00 00 00 00`,
    );
    check(
      GnttabQuerySize,
      { dom: 1, nr_frames: 1, max_nr_frames: 64, status: -2 },
      `01 00 00 00  01 00 00 00  40 00 00 00  fe ff 00 00`,
    );
    check(GnttabSetVersion, { version: 1 }, `01 00 00 00`);
    check(GnttabGetVersion, { dom: 9, version: 1 }, `09 00 00 00  01 00 00 00`);
  });

  it("grant_entry_v1 is flags u16, domid u16, frame u32", () => {
    check(GrantEntryV1, { flags: 0x0d, domid: 2, frame: 0x80003 }, `0d 00  02 00  03 00 08 00`);
  });

  it("event-channel argument structs", () => {
    check(EvtchnAllocUnbound, { dom: 0x7ff0, remote_dom: 4, port: 9 }, `f0 7f  04 00  09 00 00 00`);
    check(
      EvtchnBindInterdomain,
      { remote_dom: 1, remote_port: 0x102, local_port: 3 },
      `01 00 00 00  02 01 00 00  03 00 00 00`,
    );
    check(EvtchnBindVirq, { virq: 3, vcpu: 1, port: 7 }, `03 00 00 00  01 00 00 00  07 00 00 00`);
    check(EvtchnBindIpi, { vcpu: 2, port: 5 }, `02 00 00 00  05 00 00 00`);
    check(EvtchnPort, { port: 0x0fff }, `ff 0f 00 00`);
    check(EvtchnBindVcpu, { port: 4, vcpu: 1 }, `04 00 00 00  01 00 00 00`);
    check(
      EvtchnStatus,
      { dom: 0x7ff0, port: 6, status: 2, vcpu: 1, u_dom: 5, interdomain_port: 0x21 },
      `f0 7f 00 00  06 00 00 00  02 00 00 00  01 00 00 00  05 00 00 00  21 00 00 00`,
    );
  });

  it("memory_op argument structs", () => {
    check(
      XenMemoryReservation,
      { extent_start: 0x80002000, nr_extents: 3, extent_order: 2, mem_flags: 0, domid: 0x7ff0 },
      `00 20 00 80 00 00 00 00  03 00 00 00 00 00 00 00  02 00 00 00  00 00 00 00
       f0 7f 00 00 00 00 00 00`,
    );
    check(
      XenAddToPhysmap,
      { domid: 0x7ff0, size: 0, space: 1, idx: 2, gpfn: 0x38000 },
      `f0 7f  00 00  01 00 00 00  02 00 00 00 00 00 00 00  00 80 03 00 00 00 00 00`,
    );
    check(XenRemoveFromPhysmap, { domid: 3, gpfn: 0x80001 }, `03 00 00 00 00 00 00 00  01 00 08 00 00 00 00 00`);
    check(DomidArg, { domid: 0x7ff0 }, `f0 7f`);
  });

  it("sched_op, xen_version, vcpu_op and hvm_op argument structs", () => {
    check(SchedShutdown, { reason: 3 }, `03 00 00 00`);
    check(
      SchedPoll,
      { ports: 0x80000100, nr_ports: 2, timeout: 0x1_0000_0001 },
      `00 01 00 80 00 00 00 00  02 00 00 00 00 00 00 00  01 00 00 00 01 00 00 00`,
    );
    check(SchedRemoteShutdown, { domain_id: 5, reason: 1 }, `05 00 00 00  01 00 00 00`);
    check(XenFeatureInfo, { submap_idx: 0, submap: 0x10004 }, `00 00 00 00  04 00 01 00`);
    check(
      VcpuRegisterVcpuInfo,
      { mfn: 0x80002, offset: 64, rsvd: 0 },
      `02 00 08 00 00 00 00 00  40 00 00 00  00 00 00 00`,
    );
    check(
      XenHvmParam,
      { domid: 0x7ff0, index: 1, value: 0x80010 },
      `f0 7f 00 00  01 00 00 00  10 00 08 00 00 00 00 00`,
    );
  });

  it("vcpu_info is 48 bytes, shared_info 1088, with 64-bit event words", () => {
    assert.equal(VcpuTimeInfo.size, 32);
    assert.equal(VcpuInfo.size, 48);
    assert.equal(VcpuInfo.fields.evtchn_pending_sel.offset, 8);
    assert.equal(VcpuInfo.fields.time_version.offset, 16);
    assert.equal(VcpuInfo.fields.time_system_time.offset, 16 + VcpuTimeInfo.fields.system_time.offset);
    assert.equal(VcpuInfo.fields.time_tsc_shift.offset, 16 + 28);
    check(
      VcpuInfo,
      { evtchn_upcall_pending: 1, evtchn_upcall_mask: 0, evtchn_pending_sel: 2 ** 40 + 1, time_version: 2 },
      `01 00 00 00 00 00 00 00  01 00 00 00 00 01 00 00  02 00 00 00 00 00 00 00
       00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00`,
    );
    assert.equal(SharedInfo.size, 1088);
    assert.equal(SHARED_INFO_EVTCHN_PENDING_OFFSET, 48);
    assert.equal(SHARED_INFO_EVTCHN_MASK_OFFSET, 48 + 64 * 8);
    assert.equal(SharedInfo.fields.wc_version.offset, 1072);
    assert.equal(SharedInfo.fields.wc_sec_hi.offset, 1084);
  });
});
