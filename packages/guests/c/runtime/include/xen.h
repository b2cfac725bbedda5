/*
 * Xen public ABI for Xenon guests: every constant and struct of packages/hypervisor/ABI.md.
 *
 * Values follow Xen 4.17's public headers; structs are laid out the way Xen lays them out for a
 * 32-bit Arm guest (ILP32, little-endian, xen_ulong_t/xen_pfn_t 64-bit and 8-aligned, a guest
 * handle inside a struct is 8 bytes whose upper half must be zero). Every struct carries
 * _Static_asserts on its size and field offsets, copied from ABI.md, so a layout drift is a build
 * error rather than a silent misread by the hypervisor.
 */
#ifndef XENON_XEN_H
#define XENON_XEN_H

#include <stddef.h>
#include <stdint.h>

/* Checks a field's offset against ABI.md. */
#define XEN_ABI_OFFSET(type, field, off) \
  _Static_assert(offsetof(type, field) == (off), #type "." #field " is at offset " #off " in ABI.md")
#define XEN_ABI_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " is " #size " bytes in ABI.md")

/* --- basic types (ABI.md §2) -------------------------------------------------------------- */

typedef uint64_t xen_ulong_t;
typedef uint64_t xen_pfn_t;
/* A XEN_GUEST_HANDLE inside a struct: a guest-physical address, upper half zero on RV32. */
typedef uint64_t xen_guest_handle_t;
typedef uint16_t domid_t;
typedef uint32_t grant_ref_t;
typedef uint32_t grant_handle_t;
typedef uint32_t evtchn_port_t;

static inline xen_guest_handle_t xen_handle(const volatile void *p) { return (uint32_t)(uintptr_t)p; }

#define XEN_PAGE_SHIFT 12
#define XEN_PAGE_SIZE 4096u

#define DOMID_FIRST_RESERVED 0x7ff0
#define DOMID_SELF 0x7ff0
#define DOMID_IO 0x7ff1
#define DOMID_XEN 0x7ff2
#define DOMID_COW 0x7ff3
#define DOMID_INVALID 0x7ff4
#define DOMID_IDLE 0x7fff
#define DOMID_MASK 0x7fff

/* --- hypercall numbers (placed in a7; xen-abi.md §1.1) ------------------------------------ */

#define __HYPERVISOR_set_trap_table 0
#define __HYPERVISOR_mmu_update 1
#define __HYPERVISOR_set_gdt 2
#define __HYPERVISOR_stack_switch 3
#define __HYPERVISOR_set_callbacks 4
#define __HYPERVISOR_fpu_taskswitch 5
#define __HYPERVISOR_sched_op_compat 6
#define __HYPERVISOR_platform_op 7
#define __HYPERVISOR_set_debugreg 8
#define __HYPERVISOR_get_debugreg 9
#define __HYPERVISOR_update_descriptor 10
#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_multicall 13
#define __HYPERVISOR_update_va_mapping 14
#define __HYPERVISOR_set_timer_op 15
#define __HYPERVISOR_event_channel_op_compat 16
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_physdev_op_compat 19
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_vm_assist 21
#define __HYPERVISOR_update_va_mapping_otherdomain 22
#define __HYPERVISOR_iret 23
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_set_segment_base 25
#define __HYPERVISOR_mmuext_op 26
#define __HYPERVISOR_xsm_op 27
#define __HYPERVISOR_nmi_op 28
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_callback_op 30
#define __HYPERVISOR_xenoprof_op 31
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_physdev_op 33
#define __HYPERVISOR_hvm_op 34
#define __HYPERVISOR_sysctl 35
#define __HYPERVISOR_domctl 36
#define __HYPERVISOR_kexec_op 37
#define __HYPERVISOR_tmem_op 38
#define __HYPERVISOR_argo_op 39
#define __HYPERVISOR_xenpmu_op 40
#define __HYPERVISOR_dm_op 41
#define __HYPERVISOR_hypfs_op 42
#define __HYPERVISOR_arch_0 48
#define __HYPERVISOR_arch_7 55

/* --- errno (ABI.md §6.1; hypercalls return them negated) ---------------------------------- */

#define XEN_EPERM 1
#define XEN_ENOENT 2
#define XEN_ESRCH 3
#define XEN_E2BIG 7
#define XEN_EAGAIN 11
#define XEN_ENOMEM 12
#define XEN_EACCES 13
#define XEN_EFAULT 14
#define XEN_EBUSY 16
#define XEN_EEXIST 17
#define XEN_ENODEV 19
#define XEN_EINVAL 22
#define XEN_ENOSPC 28
#define XEN_ERANGE 34
#define XEN_ENOSYS 38
#define XEN_ETIME 62
#define XEN_EOVERFLOW 75
#define XEN_EOPNOTSUPP 95

/* --- shared structures (ABI.md §4) -------------------------------------------------------- */

struct vcpu_time_info {
  uint32_t version; /* odd while the core updates the record */
  uint32_t pad0;
  uint64_t tsc_timestamp;
  uint64_t system_time; /* ns */
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;
  uint8_t pad1[2];
};
XEN_ABI_SIZE(struct vcpu_time_info, 32);
XEN_ABI_OFFSET(struct vcpu_time_info, tsc_timestamp, 8);
XEN_ABI_OFFSET(struct vcpu_time_info, system_time, 16);
XEN_ABI_OFFSET(struct vcpu_time_info, tsc_to_system_mul, 24);
XEN_ABI_OFFSET(struct vcpu_time_info, tsc_shift, 28);
XEN_ABI_OFFSET(struct vcpu_time_info, flags, 29);

struct vcpu_info {
  uint8_t evtchn_upcall_pending; /* core sets 1; guest clears before scanning */
  uint8_t evtchn_upcall_mask;    /* not consulted by the core (mask with sstatus.SIE/sie.SEIE) */
  uint8_t pad[6];
  xen_ulong_t evtchn_pending_sel; /* bit w: word w of evtchn_pending may have news */
  struct vcpu_time_info time;
};
XEN_ABI_SIZE(struct vcpu_info, 48);
XEN_ABI_OFFSET(struct vcpu_info, evtchn_upcall_mask, 1);
XEN_ABI_OFFSET(struct vcpu_info, evtchn_pending_sel, 8);
XEN_ABI_OFFSET(struct vcpu_info, time, 16);

/* 2-level event channels: 64 words of 64 bits. Port p is bit p % 64 of word p / 64; each u64
 * word is two little-endian u32 halves, which both sides change with 32-bit atomics. */
#define EVTCHN_2L_WORDS 64
#define EVTCHN_2L_NR_CHANNELS 4096
#define XEN_LEGACY_MAX_VCPUS 1

struct shared_info {
  struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];
  xen_ulong_t evtchn_pending[EVTCHN_2L_WORDS];
  xen_ulong_t evtchn_mask[EVTCHN_2L_WORDS];
  uint32_t wc_version;
  uint32_t wc_sec;
  uint32_t wc_nsec;
  uint32_t wc_sec_hi;
};
XEN_ABI_SIZE(struct shared_info, 1088);
XEN_ABI_OFFSET(struct shared_info, evtchn_pending, 48);
XEN_ABI_OFFSET(struct shared_info, evtchn_mask, 560);
XEN_ABI_OFFSET(struct shared_info, wc_version, 1072);
XEN_ABI_OFFSET(struct shared_info, wc_sec, 1076);
XEN_ABI_OFFSET(struct shared_info, wc_nsec, 1080);
XEN_ABI_OFFSET(struct shared_info, wc_sec_hi, 1084);

/* --- memory_op (12; ABI.md §5.1): a0 = cmd (sub-op | start extent << 6), a1 = arg -------- */

#define XENMEM_increase_reservation 0
#define XENMEM_decrease_reservation 1
#define XENMEM_maximum_ram_page 2
#define XENMEM_current_reservation 3
#define XENMEM_maximum_reservation 4
#define XENMEM_populate_physmap 6
#define XENMEM_add_to_physmap 7
#define XENMEM_maximum_gpfn 14
#define XENMEM_remove_from_physmap 15
#define MEMOP_EXTENT_SHIFT 6
#define MEMOP_CMD_MASK ((1u << MEMOP_EXTENT_SHIFT) - 1)

#define XENMAPSPACE_shared_info 0
#define XENMAPSPACE_grant_table 1
#define XENMAPSPACE_gmfn 2
#define XENMAPSPACE_gmfn_range 3
#define XENMAPSPACE_gmfn_foreign 4
#define XENMAPSPACE_dev_mmio 5
#define XENMAPIDX_grant_table_status 0x80000000u

struct xen_memory_reservation {
  xen_guest_handle_t extent_start; /* xen_pfn_t[] */
  xen_ulong_t nr_extents;
  uint32_t extent_order;
  uint32_t mem_flags;
  domid_t domid;
  uint8_t pad[6];
};
XEN_ABI_SIZE(struct xen_memory_reservation, 32);
XEN_ABI_OFFSET(struct xen_memory_reservation, nr_extents, 8);
XEN_ABI_OFFSET(struct xen_memory_reservation, extent_order, 16);
XEN_ABI_OFFSET(struct xen_memory_reservation, mem_flags, 20);
XEN_ABI_OFFSET(struct xen_memory_reservation, domid, 24);

struct xen_add_to_physmap {
  domid_t domid;
  uint16_t size; /* ignored */
  uint32_t space;
  xen_ulong_t idx;
  xen_pfn_t gpfn;
};
XEN_ABI_SIZE(struct xen_add_to_physmap, 24);
XEN_ABI_OFFSET(struct xen_add_to_physmap, size, 2);
XEN_ABI_OFFSET(struct xen_add_to_physmap, space, 4);
XEN_ABI_OFFSET(struct xen_add_to_physmap, idx, 8);
XEN_ABI_OFFSET(struct xen_add_to_physmap, gpfn, 16);

#define XENMEM_add_to_physmap_batch 23
#define XENMAPSPACE_gmfn_foreign 4

struct xen_add_to_physmap_batch {
  domid_t domid;
  uint16_t space;
  uint16_t size;
  union {
    domid_t foreign_domid;
    uint16_t res0;
  } u;
  xen_guest_handle_t idxs;  /* xen_ulong_t[size] */
  xen_guest_handle_t gpfns; /* xen_pfn_t[size] */
  xen_guest_handle_t errs;  /* OUT: int[size] */
};
XEN_ABI_SIZE(struct xen_add_to_physmap_batch, 32);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, space, 2);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, size, 4);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, u.foreign_domid, 6);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, idxs, 8);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, gpfns, 16);
XEN_ABI_OFFSET(struct xen_add_to_physmap_batch, errs, 24);

struct xen_remove_from_physmap {
  domid_t domid;
  uint8_t pad[6];
  xen_pfn_t gpfn;
};
XEN_ABI_SIZE(struct xen_remove_from_physmap, 16);
XEN_ABI_OFFSET(struct xen_remove_from_physmap, gpfn, 8);

/* --- xen_version (17; ABI.md §5.2) -------------------------------------------------------- */

#define XENVER_version 0
#define XENVER_extraversion 1
#define XENVER_compile_info 2
#define XENVER_capabilities 3
#define XENVER_changeset 4
#define XENVER_platform_parameters 5
#define XENVER_get_features 6
#define XENVER_pagesize 7
#define XENVER_guest_handle 8
#define XENVER_commandline 9
#define XENVER_build_id 10

#define XEN_EXTRAVERSION_LEN 16
#define XEN_CAPABILITIES_INFO_LEN 1024
#define XEN_CHANGESET_INFO_LEN 64

#define XENFEAT_writable_page_tables 0
#define XENFEAT_auto_translated_physmap 2
#define XENFEAT_hvm_callback_vector 8
#define XENFEAT_dom0 11
#define XENFEAT_not_direct_mapped 16
#define XENFEAT_direct_mapped 17
#define XENFEAT_NR_SUBMAPS 1

struct xen_feature_info {
  uint32_t submap_idx; /* IN */
  uint32_t submap;     /* OUT */
};
XEN_ABI_SIZE(struct xen_feature_info, 8);
XEN_ABI_OFFSET(struct xen_feature_info, submap, 4);

/* --- console_io (18; ABI.md §5.3): a0 = cmd, a1 = count, a2 = buf ------------------------- */

#define CONSOLEIO_write 0
#define CONSOLEIO_read 1

/* --- grant_table_op (20; ABI.md §4.3, §5.4): a0 = cmd, a1 = array, a2 = count ------------- */

#define GNTTABOP_map_grant_ref 0
#define GNTTABOP_unmap_grant_ref 1
#define GNTTABOP_setup_table 2
#define GNTTABOP_dump_table 3
#define GNTTABOP_transfer 4
#define GNTTABOP_copy 5
#define GNTTABOP_query_size 6
#define GNTTABOP_unmap_and_replace 7
#define GNTTABOP_set_version 8
#define GNTTABOP_get_status_frames 9
#define GNTTABOP_get_version 10
#define GNTTABOP_swap_grant_ref 11
#define GNTTABOP_cache_flush 12

#define GTF_invalid 0x0
#define GTF_permit_access 0x1
#define GTF_accept_transfer 0x2
#define GTF_transitive 0x3
#define GTF_type_mask 0x3
#define GTF_readonly 0x04
#define GTF_reading 0x08
#define GTF_writing 0x10

#define GNTMAP_device_map 0x1
#define GNTMAP_host_map 0x2
#define GNTMAP_readonly 0x4
#define GNTMAP_application_map 0x8
#define GNTMAP_contains_pte 0x10

#define GNTCOPY_source_gref 0x1
#define GNTCOPY_dest_gref 0x2

#define GNTST_okay 0
#define GNTST_general_error (-1)
#define GNTST_bad_domain (-2)
#define GNTST_bad_gntref (-3)
#define GNTST_bad_handle (-4)
#define GNTST_bad_virt_addr (-5)
#define GNTST_bad_dev_addr (-6)
#define GNTST_no_device_space (-7)
#define GNTST_permission_denied (-8)
#define GNTST_bad_page (-9)
#define GNTST_bad_copy_arg (-10)
#define GNTST_address_too_big (-11)
#define GNTST_eagain (-12)
#define GNTST_no_space (-13)

/* Entries per 4 KiB frame, and refs the toolstack keeps (0 console, 1 XenStore). */
#define GNTTAB_ENTRIES_PER_FRAME 512
#define GNTTAB_NR_RESERVED_ENTRIES 8

/* flags and domid share one aligned 32-bit word; the core changes it only with CAS / atomic AND. */
struct grant_entry_v1 {
  uint16_t flags;
  domid_t domid;
  uint32_t frame; /* gfn */
};
XEN_ABI_SIZE(struct grant_entry_v1, 8);
XEN_ABI_OFFSET(struct grant_entry_v1, domid, 2);
XEN_ABI_OFFSET(struct grant_entry_v1, frame, 4);

struct gnttab_map_grant_ref {
  uint64_t host_addr; /* IN: guest-physical address to map at */
  uint32_t flags;     /* IN: GNTMAP_* */
  grant_ref_t ref;    /* IN */
  domid_t dom;        /* IN: granting domain */
  int16_t status;     /* OUT: GNTST_* */
  grant_handle_t handle; /* OUT */
  uint64_t dev_bus_addr; /* OUT (0) */
};
XEN_ABI_SIZE(struct gnttab_map_grant_ref, 32);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, flags, 8);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, ref, 12);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, dom, 16);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, status, 18);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, handle, 20);
XEN_ABI_OFFSET(struct gnttab_map_grant_ref, dev_bus_addr, 24);

struct gnttab_unmap_grant_ref {
  uint64_t host_addr;
  uint64_t dev_bus_addr; /* must be 0 */
  grant_handle_t handle;
  int16_t status; /* OUT */
  uint8_t pad[2];
};
XEN_ABI_SIZE(struct gnttab_unmap_grant_ref, 24);
XEN_ABI_OFFSET(struct gnttab_unmap_grant_ref, dev_bus_addr, 8);
XEN_ABI_OFFSET(struct gnttab_unmap_grant_ref, handle, 16);
XEN_ABI_OFFSET(struct gnttab_unmap_grant_ref, status, 20);

struct gnttab_copy_ptr {
  union {
    grant_ref_t ref; /* with GNTCOPY_*_gref */
    xen_pfn_t gmfn;  /* otherwise: the caller's own gfn */
  } u;
  domid_t domid;
  uint16_t offset;
  uint8_t pad[4];
};
XEN_ABI_SIZE(struct gnttab_copy_ptr, 16);
XEN_ABI_OFFSET(struct gnttab_copy_ptr, domid, 8);
XEN_ABI_OFFSET(struct gnttab_copy_ptr, offset, 10);

struct gnttab_copy {
  struct gnttab_copy_ptr source;
  struct gnttab_copy_ptr dest;
  uint16_t len;
  uint16_t flags; /* GNTCOPY_* */
  int16_t status; /* OUT */
  uint8_t pad[2];
};
XEN_ABI_SIZE(struct gnttab_copy, 40);
XEN_ABI_OFFSET(struct gnttab_copy, dest, 16);
XEN_ABI_OFFSET(struct gnttab_copy, len, 32);
XEN_ABI_OFFSET(struct gnttab_copy, flags, 34);
XEN_ABI_OFFSET(struct gnttab_copy, status, 36);

struct gnttab_setup_table {
  domid_t dom;
  uint8_t pad0[2];
  uint32_t nr_frames;
  int16_t status; /* OUT */
  uint8_t pad1[6];
  xen_guest_handle_t frame_list; /* OUT: xen_pfn_t[nr_frames], gfn or all-ones */
};
XEN_ABI_SIZE(struct gnttab_setup_table, 24);
XEN_ABI_OFFSET(struct gnttab_setup_table, nr_frames, 4);
XEN_ABI_OFFSET(struct gnttab_setup_table, status, 8);
XEN_ABI_OFFSET(struct gnttab_setup_table, frame_list, 16);

struct gnttab_query_size {
  domid_t dom;
  uint8_t pad0[2];
  uint32_t nr_frames;     /* OUT */
  uint32_t max_nr_frames; /* OUT */
  int16_t status;         /* OUT */
  uint8_t pad1[2];
};
XEN_ABI_SIZE(struct gnttab_query_size, 16);
XEN_ABI_OFFSET(struct gnttab_query_size, nr_frames, 4);
XEN_ABI_OFFSET(struct gnttab_query_size, max_nr_frames, 8);
XEN_ABI_OFFSET(struct gnttab_query_size, status, 12);

struct gnttab_set_version {
  uint32_t version; /* IN/OUT */
};
XEN_ABI_SIZE(struct gnttab_set_version, 4);

struct gnttab_get_version {
  domid_t dom;
  uint16_t pad;
  uint32_t version; /* OUT */
};
XEN_ABI_SIZE(struct gnttab_get_version, 8);
XEN_ABI_OFFSET(struct gnttab_get_version, version, 4);

/* --- vcpu_op (24; ABI.md §5.5): a0 = cmd, a1 = vcpuid, a2 = arg --------------------------- */

#define VCPUOP_initialise 0
#define VCPUOP_up 1
#define VCPUOP_down 2
#define VCPUOP_is_up 3
#define VCPUOP_get_runstate_info 4
#define VCPUOP_register_runstate_memory_area 5
#define VCPUOP_set_periodic_timer 6
#define VCPUOP_stop_periodic_timer 7
#define VCPUOP_set_singleshot_timer 8
#define VCPUOP_stop_singleshot_timer 9
#define VCPUOP_register_vcpu_info 10
#define VCPUOP_send_nmi 11
#define VCPUOP_get_physid 12
#define VCPUOP_register_vcpu_time_memory_area 13

/* Fail with -ETIME instead of firing at once when the deadline has already passed. */
#define VCPU_SSHOTTMR_future 1

struct vcpu_set_singleshot_timer {
  uint64_t timeout_abs_ns; /* system time, ns */
  uint32_t flags;
  uint32_t pad;
};
XEN_ABI_SIZE(struct vcpu_set_singleshot_timer, 16);
XEN_ABI_OFFSET(struct vcpu_set_singleshot_timer, flags, 8);

/* VCPUOP_initialise's argument on Xenon RV32: the first pc and x0..x31 (x0 ignored; flags 0). */
struct vcpu_guest_context {
  uint32_t flags;
  uint32_t pc;
  uint32_t x[32];
};
XEN_ABI_SIZE(struct vcpu_guest_context, 136);
XEN_ABI_OFFSET(struct vcpu_guest_context, pc, 4);
XEN_ABI_OFFSET(struct vcpu_guest_context, x, 8);

struct vcpu_register_vcpu_info {
  uint64_t mfn; /* a gfn on a translated guest */
  uint32_t offset;
  uint32_t rsvd;
};
XEN_ABI_SIZE(struct vcpu_register_vcpu_info, 16);
XEN_ABI_OFFSET(struct vcpu_register_vcpu_info, offset, 8);
XEN_ABI_OFFSET(struct vcpu_register_vcpu_info, rsvd, 12);

/* --- sched_op (29; ABI.md §5.6): a0 = cmd, a1 = arg --------------------------------------- */

#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll 3
#define SCHEDOP_remote_shutdown 4
#define SCHEDOP_shutdown_code 5
#define SCHEDOP_watchdog 6
#define SCHEDOP_pin_override 7

#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot 1
#define SHUTDOWN_suspend 2
#define SHUTDOWN_crash 3
#define SHUTDOWN_watchdog 4
#define SHUTDOWN_soft_reset 5

#define SCHED_POLL_MAX_PORTS 128

struct sched_shutdown {
  uint32_t reason;
};
XEN_ABI_SIZE(struct sched_shutdown, 4);

struct sched_poll {
  xen_guest_handle_t ports; /* evtchn_port_t[] */
  uint32_t nr_ports;
  uint32_t pad;
  uint64_t timeout; /* absolute system time in ns, 0 = none */
};
XEN_ABI_SIZE(struct sched_poll, 24);
XEN_ABI_OFFSET(struct sched_poll, nr_ports, 8);
XEN_ABI_OFFSET(struct sched_poll, timeout, 16);

struct sched_remote_shutdown {
  domid_t domain_id;
  uint16_t pad;
  uint32_t reason;
};
XEN_ABI_SIZE(struct sched_remote_shutdown, 8);
XEN_ABI_OFFSET(struct sched_remote_shutdown, reason, 4);

/* --- event_channel_op (32; ABI.md §5.7): a0 = cmd, a1 = arg ------------------------------- */

#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_bind_pirq 2
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define EVTCHNOP_status 5
#define EVTCHNOP_alloc_unbound 6
#define EVTCHNOP_bind_ipi 7
#define EVTCHNOP_bind_vcpu 8
#define EVTCHNOP_unmask 9
#define EVTCHNOP_reset 10
#define EVTCHNOP_init_control 11
#define EVTCHNOP_expand_array 12
#define EVTCHNOP_set_priority 13

#define EVTCHNSTAT_closed 0
#define EVTCHNSTAT_unbound 1
#define EVTCHNSTAT_interdomain 2
#define EVTCHNSTAT_pirq 3
#define EVTCHNSTAT_virq 4
#define EVTCHNSTAT_ipi 5

#define VIRQ_TIMER 0
#define VIRQ_DEBUG 1
#define VIRQ_CONSOLE 2
#define VIRQ_DOM_EXC 3
#define VIRQ_TBUF 4
#define VIRQ_DEBUGGER 6
#define VIRQ_XENOPROF 7
#define VIRQ_CON_RING 8
#define VIRQ_PCPU_STATE 9
#define VIRQ_MEM_EVENT 10
#define VIRQ_ARGO 11
#define VIRQ_ENOMEM 12
#define VIRQ_XENPMU 13
#define NR_VIRQS 24

struct evtchn_alloc_unbound {
  domid_t dom;
  domid_t remote_dom;
  evtchn_port_t port; /* OUT */
};
XEN_ABI_SIZE(struct evtchn_alloc_unbound, 8);
XEN_ABI_OFFSET(struct evtchn_alloc_unbound, remote_dom, 2);
XEN_ABI_OFFSET(struct evtchn_alloc_unbound, port, 4);

struct evtchn_bind_interdomain {
  domid_t remote_dom;
  uint16_t pad;
  evtchn_port_t remote_port;
  evtchn_port_t local_port; /* OUT */
};
XEN_ABI_SIZE(struct evtchn_bind_interdomain, 12);
XEN_ABI_OFFSET(struct evtchn_bind_interdomain, remote_port, 4);
XEN_ABI_OFFSET(struct evtchn_bind_interdomain, local_port, 8);

struct evtchn_bind_virq {
  uint32_t virq;
  uint32_t vcpu;
  evtchn_port_t port; /* OUT */
};
XEN_ABI_SIZE(struct evtchn_bind_virq, 12);
XEN_ABI_OFFSET(struct evtchn_bind_virq, vcpu, 4);
XEN_ABI_OFFSET(struct evtchn_bind_virq, port, 8);

struct evtchn_bind_ipi {
  uint32_t vcpu;
  evtchn_port_t port; /* OUT */
};
XEN_ABI_SIZE(struct evtchn_bind_ipi, 8);
XEN_ABI_OFFSET(struct evtchn_bind_ipi, port, 4);

/* evtchn_close, evtchn_send and evtchn_unmask are all { port u32 }. */
struct evtchn_port_arg {
  evtchn_port_t port;
};
XEN_ABI_SIZE(struct evtchn_port_arg, 4);
typedef struct evtchn_port_arg evtchn_close_t;
typedef struct evtchn_port_arg evtchn_send_t;
typedef struct evtchn_port_arg evtchn_unmask_t;

struct evtchn_status {
  domid_t dom;
  uint16_t pad;
  evtchn_port_t port;
  uint32_t status; /* OUT: EVTCHNSTAT_* */
  uint32_t vcpu;   /* OUT */
  union {
    struct {
      domid_t dom;
    } unbound;
    struct {
      domid_t dom;
      uint16_t pad;
      evtchn_port_t port;
    } interdomain;
    uint32_t pirq;
    uint32_t virq;
  } u; /* OUT */
};
XEN_ABI_SIZE(struct evtchn_status, 24);
XEN_ABI_OFFSET(struct evtchn_status, port, 4);
XEN_ABI_OFFSET(struct evtchn_status, status, 8);
XEN_ABI_OFFSET(struct evtchn_status, vcpu, 12);
XEN_ABI_OFFSET(struct evtchn_status, u, 16);
XEN_ABI_OFFSET(struct evtchn_status, u.interdomain.port, 20);

struct evtchn_bind_vcpu {
  evtchn_port_t port;
  uint32_t vcpu;
};
XEN_ABI_SIZE(struct evtchn_bind_vcpu, 8);
XEN_ABI_OFFSET(struct evtchn_bind_vcpu, vcpu, 4);

struct evtchn_reset {
  domid_t dom;
};
XEN_ABI_SIZE(struct evtchn_reset, 2);

/* --- hvm_op (34; ABI.md §5.8): a0 = cmd, a1 = arg ----------------------------------------- */

#define HVMOP_set_param 0
#define HVMOP_get_param 1

#define HVM_PARAM_CALLBACK_IRQ 0
#define HVM_PARAM_STORE_PFN 1
#define HVM_PARAM_STORE_EVTCHN 2
#define HVM_PARAM_CONSOLE_PFN 17
#define HVM_PARAM_CONSOLE_EVTCHN 18
#define HVM_NR_PARAMS 39

struct xen_hvm_param {
  domid_t domid;
  uint16_t pad;
  uint32_t index;
  uint64_t value;
};
XEN_ABI_SIZE(struct xen_hvm_param, 16);
XEN_ABI_OFFSET(struct xen_hvm_param, index, 4);
XEN_ABI_OFFSET(struct xen_hvm_param, value, 8);

/* --- XenStore (io/xs_wire.h; ABI.md §4.6): message header and the domain's ring page --------- */

struct xsd_sockmsg {
  uint32_t type;   /* XS_* */
  uint32_t req_id; /* echoed in the reply */
  uint32_t tx_id;  /* transaction id, 0 for none */
  uint32_t len;    /* payload bytes that follow, at most XENSTORE_PAYLOAD_MAX */
};
XEN_ABI_SIZE(struct xsd_sockmsg, 16);

#define XENSTORE_PAYLOAD_MAX 4096
#define XENSTORE_RING_SIZE 1024
#define MASK_XENSTORE_IDX(idx) ((idx) & (XENSTORE_RING_SIZE - 1))
typedef uint32_t XENSTORE_RING_IDX;

#define XENSTORE_SERVER_FEATURE_RECONNECTION 1
#define XENSTORE_SERVER_FEATURE_ERROR 2
#define XENSTORE_CONNECTED 0
#define XENSTORE_RECONNECT 1
#define XENSTORE_ERROR_NONE 0
#define XENSTORE_ERROR_COMM 1
#define XENSTORE_ERROR_RINGIDX 2
#define XENSTORE_ERROR_PROTO 3

struct xenstore_domain_interface {
  char req[XENSTORE_RING_SIZE]; /* guest -> XenStore domain */
  char rsp[XENSTORE_RING_SIZE]; /* XenStore domain -> guest: replies and watch events */
  XENSTORE_RING_IDX req_cons, req_prod;
  XENSTORE_RING_IDX rsp_cons, rsp_prod;
  uint32_t server_features; /* XENSTORE_SERVER_FEATURE_* */
  uint32_t connection;      /* XENSTORE_CONNECTED / XENSTORE_RECONNECT */
  uint32_t error;           /* XENSTORE_ERROR_* once the server gave up on the ring */
};
XEN_ABI_SIZE(struct xenstore_domain_interface, 2076);
XEN_ABI_OFFSET(struct xenstore_domain_interface, req_cons, 2048);
XEN_ABI_OFFSET(struct xenstore_domain_interface, error, 2072);

/* Where the toolstack puts a domain's XenStore page (ABI.md §3): Arm's magic-page scheme. */
#define GUEST_MAGIC_BASE 0x7e000000u
#define XENSTORE_PFN_OFFSET 1

/* --- control domain: domctl (36) and sysctl (35) (ABI.md §5.9, §5.10): a0 = struct ---------- */

/* A wrong interface_version is -EACCES; an unprivileged caller gets -EPERM. */
#define XEN_DOMCTL_INTERFACE_VERSION 0x15
#define XEN_SYSCTL_INTERFACE_VERSION 0x15

#define XEN_DOMCTL_createdomain 1
#define XEN_DOMCTL_destroydomain 2
#define XEN_DOMCTL_pausedomain 3
#define XEN_DOMCTL_unpausedomain 4
#define XEN_DOMCTL_getdomaininfo 5
#define XEN_DOMCTL_setvcpuaffinity 9
#define XEN_DOMCTL_max_mem 11
#define XEN_DOMCTL_setvcpucontext 12
#define XEN_DOMCTL_getvcpucontext 13
#define XEN_DOMCTL_getvcpuinfo 14
#define XEN_DOMCTL_max_vcpus 15
#define XEN_DOMCTL_scheduler_op 16
#define XEN_DOMCTL_getvcpuaffinity 25
#define XEN_DOMCTL_set_virq_handler 66

#define XEN_DOMCTL_CDF_hvm (1u << 0)
#define XEN_DOMCTL_CDF_hap (1u << 1)
#define XEN_DOMCTL_CDF_s3_integrity (1u << 2)
#define XEN_DOMCTL_CDF_oos_off (1u << 3)
#define XEN_DOMCTL_CDF_xs_domain (1u << 4)
#define XEN_DOMCTL_CDF_iommu (1u << 5)
#define XEN_DOMCTL_CDF_nested_virt (1u << 6)
#define XEN_DOMCTL_CDF_vpmu (1u << 7)
#define XEN_DOMCTL_GRANT_version(v) ((v) & 0xf)

#define XEN_DOMINF_dying (1u << 0)
#define XEN_DOMINF_hvm_guest (1u << 1)
#define XEN_DOMINF_shutdown (1u << 2)
#define XEN_DOMINF_paused (1u << 3)
#define XEN_DOMINF_blocked (1u << 4)
#define XEN_DOMINF_running (1u << 5)
#define XEN_DOMINF_debugged (1u << 6)
#define XEN_DOMINF_xs_domain (1u << 7)
#define XEN_DOMINF_hap (1u << 8)
#define XEN_DOMINF_shutdownmask 255
#define XEN_DOMINF_shutdownshift 16

#define XEN_VCPUAFFINITY_HARD (1u << 0)
#define XEN_VCPUAFFINITY_SOFT (1u << 1)
#define XEN_VCPUAFFINITY_FORCE (1u << 2)

#define XEN_SCHEDULER_CREDIT 5
#define XEN_SCHEDULER_CREDIT2 6
#define XEN_SCHEDULER_ARINC653 7
#define XEN_SCHEDULER_RTDS 8
#define XEN_SCHEDULER_NULL 9

#define XEN_DOMCTL_SCHEDOP_putinfo 0
#define XEN_DOMCTL_SCHEDOP_getinfo 1
#define XEN_DOMCTL_SCHEDOP_putvcpuinfo 2
#define XEN_DOMCTL_SCHEDOP_getvcpuinfo 3
#define XEN_DOMCTL_SCHEDRT_extra (1u << 0)

typedef uint8_t xen_domain_handle_t[16];

/* A byte bitmap (bit n = pCPU n) behind a guest handle. */
struct xenctl_bitmap {
  xen_guest_handle_t bitmap; /* uint8_t[] */
  uint32_t nr_bits;
  uint32_t pad;
};
XEN_ABI_SIZE(struct xenctl_bitmap, 16);
XEN_ABI_OFFSET(struct xenctl_bitmap, nr_bits, 8);

/* Arm's xen_arch_domainconfig. */
struct xen_arch_domainconfig {
  uint8_t gic_version;
  uint8_t pad;
  uint16_t tee_type;
  uint32_t nr_spis;
  uint32_t clock_frequency; /* OUT */
};
XEN_ABI_SIZE(struct xen_arch_domainconfig, 12);

struct xen_domctl_createdomain {
  uint32_t ssidref;
  xen_domain_handle_t handle;
  uint32_t flags; /* XEN_DOMCTL_CDF_*: hvm | hap required */
  uint32_t iommu_opts;
  uint32_t max_vcpus;
  uint32_t max_evtchn_port;
  int32_t max_grant_frames;    /* < 0: default */
  int32_t max_maptrack_frames; /* < 0: default */
  uint32_t grant_opts;         /* XEN_DOMCTL_GRANT_version(1) */
  uint32_t vmtrace_size;
  uint32_t cpupool_id;
  struct xen_arch_domainconfig arch;
};
XEN_ABI_SIZE(struct xen_domctl_createdomain, 68);
XEN_ABI_OFFSET(struct xen_domctl_createdomain, handle, 4);
XEN_ABI_OFFSET(struct xen_domctl_createdomain, flags, 20);
XEN_ABI_OFFSET(struct xen_domctl_createdomain, max_vcpus, 28);
XEN_ABI_OFFSET(struct xen_domctl_createdomain, cpupool_id, 52);
XEN_ABI_OFFSET(struct xen_domctl_createdomain, arch, 56);

struct xen_domctl_getdomaininfo {
  domid_t domain;
  uint16_t pad1;
  uint32_t flags; /* XEN_DOMINF_* */
  uint64_t tot_pages;
  uint64_t max_pages;
  uint64_t outstanding_pages;
  uint64_t shr_pages;
  uint64_t paged_pages;
  uint64_t shared_info_frame;
  uint64_t cpu_time; /* ns */
  uint32_t nr_online_vcpus;
  uint32_t max_vcpu_id;
  uint32_t ssidref;
  xen_domain_handle_t handle;
  uint32_t cpupool;
  uint8_t gpaddr_bits;
  uint8_t pad2[7];
  struct xen_arch_domainconfig arch_config;
  uint8_t pad3[4];
};
XEN_ABI_SIZE(struct xen_domctl_getdomaininfo, 120);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, flags, 4);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, tot_pages, 8);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, cpu_time, 56);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, nr_online_vcpus, 64);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, handle, 76);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, cpupool, 92);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, gpaddr_bits, 96);
XEN_ABI_OFFSET(struct xen_domctl_getdomaininfo, arch_config, 104);

struct xen_domctl_max_mem {
  uint64_t max_memkb;
};
XEN_ABI_SIZE(struct xen_domctl_max_mem, 8);

struct xen_domctl_vcpucontext {
  uint32_t vcpu;
  uint32_t pad;
  xen_guest_handle_t ctxt; /* struct vcpu_guest_context * */
};
XEN_ABI_SIZE(struct xen_domctl_vcpucontext, 16);
XEN_ABI_OFFSET(struct xen_domctl_vcpucontext, ctxt, 8);

struct xen_domctl_max_vcpus {
  uint32_t max; /* must equal createdomain's max_vcpus */
};
XEN_ABI_SIZE(struct xen_domctl_max_vcpus, 4);

struct xen_domctl_getvcpuinfo {
  uint32_t vcpu;    /* IN */
  uint8_t online;   /* OUT: not down */
  uint8_t blocked;  /* OUT: waiting for an event */
  uint8_t running;  /* OUT: on a pCPU now */
  uint8_t pad;
  uint64_t cpu_time; /* OUT: ns */
  uint32_t cpu;      /* OUT */
  uint32_t pad2;
};
XEN_ABI_SIZE(struct xen_domctl_getvcpuinfo, 24);
XEN_ABI_OFFSET(struct xen_domctl_getvcpuinfo, cpu_time, 8);
XEN_ABI_OFFSET(struct xen_domctl_getvcpuinfo, cpu, 16);

struct xen_domctl_set_virq_handler {
  uint32_t virq; /* a global VIRQ, e.g. VIRQ_DOM_EXC */
};
XEN_ABI_SIZE(struct xen_domctl_set_virq_handler, 4);

struct xen_domctl_vcpuaffinity {
  uint32_t vcpu;
  uint32_t flags; /* XEN_VCPUAFFINITY_* */
  struct xenctl_bitmap cpumap_hard; /* IN/OUT (set: the effective mask comes back) */
  struct xenctl_bitmap cpumap_soft;
};
XEN_ABI_SIZE(struct xen_domctl_vcpuaffinity, 40);
XEN_ABI_OFFSET(struct xen_domctl_vcpuaffinity, cpumap_hard, 8);
XEN_ABI_OFFSET(struct xen_domctl_vcpuaffinity, cpumap_soft, 24);

struct xen_domctl_sched_credit {
  uint16_t weight;
  uint16_t cap;
};
struct xen_domctl_sched_credit2 {
  uint16_t weight; /* putinfo: 0 = unchanged */
  uint16_t cap;    /* percent of one pCPU, 0 = none */
};
struct xen_domctl_sched_rtds {
  uint32_t period; /* us */
  uint32_t budget; /* us */
  uint32_t flags;  /* XEN_DOMCTL_SCHEDRT_extra */
};

struct xen_domctl_schedparam_vcpu {
  union {
    struct xen_domctl_sched_credit credit;
    struct xen_domctl_sched_credit2 credit2;
    struct xen_domctl_sched_rtds rtds;
  } u;
  uint32_t vcpuid;
};
XEN_ABI_SIZE(struct xen_domctl_schedparam_vcpu, 16);
XEN_ABI_OFFSET(struct xen_domctl_schedparam_vcpu, vcpuid, 12);

struct xen_domctl_scheduler_op {
  uint32_t sched_id; /* XEN_SCHEDULER_*: must be the domain's pool's */
  uint32_t cmd;      /* XEN_DOMCTL_SCHEDOP_* */
  union {
    struct xen_domctl_sched_credit credit;
    struct xen_domctl_sched_credit2 credit2;
    struct xen_domctl_sched_rtds rtds;
    struct {
      xen_guest_handle_t vcpus; /* struct xen_domctl_schedparam_vcpu[] */
      uint32_t nr_vcpus;        /* IN: elements; OUT: elements done */
      uint32_t padding;
    } v;
  } u;
};
XEN_ABI_SIZE(struct xen_domctl_scheduler_op, 24);
XEN_ABI_OFFSET(struct xen_domctl_scheduler_op, u, 8);

struct xen_domctl {
  uint32_t cmd;
  uint32_t interface_version; /* XEN_DOMCTL_INTERFACE_VERSION */
  domid_t domain;             /* IN/OUT */
  uint16_t pad[3];
  union {
    struct xen_domctl_createdomain createdomain;
    struct xen_domctl_getdomaininfo getdomaininfo;
    struct xen_domctl_max_mem max_mem;
    struct xen_domctl_vcpucontext vcpucontext;
    struct xen_domctl_max_vcpus max_vcpus;
    struct xen_domctl_getvcpuinfo getvcpuinfo;
    struct xen_domctl_set_virq_handler set_virq_handler;
    struct xen_domctl_vcpuaffinity vcpuaffinity;
    struct xen_domctl_scheduler_op scheduler_op;
    uint8_t pad[128];
  } u;
};
XEN_ABI_SIZE(struct xen_domctl, 144);
XEN_ABI_OFFSET(struct xen_domctl, domain, 8);
XEN_ABI_OFFSET(struct xen_domctl, u, 16);

#define XEN_SYSCTL_physinfo 3
#define XEN_SYSCTL_sched_id 4
#define XEN_SYSCTL_getdomaininfolist 6
#define XEN_SYSCTL_cpupool_op 18
#define XEN_SYSCTL_scheduler_op 19

#define XEN_SYSCTL_PHYSCAP_hvm (1u << 0)
#define XEN_SYSCTL_PHYSCAP_hap (1u << 3)
#define XEN_SYSCTL_PHYSCAP_gnttab_v1 (1u << 8)

#define XEN_SYSCTL_CPUPOOL_OP_CREATE 1
#define XEN_SYSCTL_CPUPOOL_OP_DESTROY 2
#define XEN_SYSCTL_CPUPOOL_OP_INFO 3
#define XEN_SYSCTL_CPUPOOL_OP_ADDCPU 4
#define XEN_SYSCTL_CPUPOOL_OP_RMCPU 5
#define XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN 6
#define XEN_SYSCTL_CPUPOOL_OP_FREEINFO 7
#define XEN_SYSCTL_CPUPOOL_PAR_ANY 0xFFFFFFFFu

#define XEN_SYSCTL_SCHEDOP_putinfo 0
#define XEN_SYSCTL_SCHEDOP_getinfo 1

struct xen_sysctl_physinfo {
  uint32_t threads_per_core;
  uint32_t cores_per_socket;
  uint32_t nr_cpus;
  uint32_t max_cpu_id;
  uint32_t nr_nodes;
  uint32_t max_node_id;
  uint32_t cpu_khz;
  uint32_t capabilities; /* XEN_SYSCTL_PHYSCAP_* */
  uint32_t arch_capabilities;
  uint32_t pad;
  uint64_t total_pages;
  uint64_t free_pages;
  uint64_t scrub_pages;
  uint64_t outstanding_pages;
  uint64_t max_mfn;
  uint32_t hw_cap[8];
};
XEN_ABI_SIZE(struct xen_sysctl_physinfo, 112);
XEN_ABI_OFFSET(struct xen_sysctl_physinfo, total_pages, 40);
XEN_ABI_OFFSET(struct xen_sysctl_physinfo, hw_cap, 80);

struct xen_sysctl_sched_id {
  uint32_t sched_id; /* OUT */
};
XEN_ABI_SIZE(struct xen_sysctl_sched_id, 4);

struct xen_sysctl_getdomaininfolist {
  domid_t first_domain;
  uint16_t pad;
  uint32_t max_domains;
  xen_guest_handle_t buffer; /* struct xen_domctl_getdomaininfo[] */
  uint32_t num_domains;      /* OUT */
  uint32_t pad2;
};
XEN_ABI_SIZE(struct xen_sysctl_getdomaininfolist, 24);
XEN_ABI_OFFSET(struct xen_sysctl_getdomaininfolist, buffer, 8);
XEN_ABI_OFFSET(struct xen_sysctl_getdomaininfolist, num_domains, 16);

struct xen_sysctl_cpupool_op {
  uint32_t op;         /* XEN_SYSCTL_CPUPOOL_OP_* */
  uint32_t cpupool_id; /* IN: create/destroy/info/addcpu/rmcpu/movedomain; OUT: create/info */
  uint32_t sched_id;   /* IN: create; OUT: info */
  uint32_t domid;      /* IN: movedomain */
  uint32_t cpu;        /* IN: addcpu/rmcpu */
  uint32_t n_dom;      /* OUT: info */
  struct xenctl_bitmap cpumap; /* OUT: info/freeinfo */
};
XEN_ABI_SIZE(struct xen_sysctl_cpupool_op, 40);
XEN_ABI_OFFSET(struct xen_sysctl_cpupool_op, cpumap, 24);

struct xen_sysctl_credit2_schedule {
  uint32_t ratelimit_us;
};

struct xen_sysctl_scheduler_op {
  uint32_t cpupool_id;
  uint32_t sched_id; /* XEN_SCHEDULER_* */
  uint32_t cmd;      /* XEN_SYSCTL_SCHEDOP_* */
  uint32_t pad;
  union {
    struct {
      xen_guest_handle_t schedule; /* not modelled */
    } sched_arinc653;
    struct xen_sysctl_credit2_schedule sched_credit2;
    uint8_t pad[16];
  } u;
};
XEN_ABI_SIZE(struct xen_sysctl_scheduler_op, 32);
XEN_ABI_OFFSET(struct xen_sysctl_scheduler_op, u, 16);

struct xen_sysctl {
  uint32_t cmd;
  uint32_t interface_version; /* XEN_SYSCTL_INTERFACE_VERSION */
  union {
    struct xen_sysctl_physinfo physinfo;
    struct xen_sysctl_sched_id sched_id;
    struct xen_sysctl_getdomaininfolist getdomaininfolist;
    struct xen_sysctl_cpupool_op cpupool_op;
    struct xen_sysctl_scheduler_op scheduler_op;
    uint8_t pad[128];
  } u;
};
XEN_ABI_SIZE(struct xen_sysctl, 136);
XEN_ABI_OFFSET(struct xen_sysctl, u, 8);

#endif
