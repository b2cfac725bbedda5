/** Facts from xen/include/public/event_channel.h (Xen 4.17), see shared/reference/xen-abi.md §1.3, §3. */

/** `EVTCHNOP_*` sub-ops of event_channel_op. */
export const EvtchnOp = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
} as const;

/** `EVTCHNSTAT_*` values reported by EVTCHNOP_status. */
export const EvtchnStat = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;

/** 2-level ABI with a 64-bit xen_ulong_t: 64 words of 64 bits. */
export const BITS_PER_EVTCHN_WORD = 64;
export const EVTCHN_2L_NR_CHANNELS = BITS_PER_EVTCHN_WORD * BITS_PER_EVTCHN_WORD;
/** libxl's and dom0less's default max_evtchn_port for a domU. */
export const DEFAULT_MAX_EVTCHN_PORT = 1023;
