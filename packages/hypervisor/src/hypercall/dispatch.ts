import type { Domain } from "../domain.js";
import { err } from "../public/errno.js";
import { Hypercall } from "../public/xen.js";
import {
  consoleIo,
  domctl,
  eventChannelOp,
  grantTableOp,
  hvmOp,
  memoryOp,
  schedOp,
  sysctl,
  vcpuOp,
  xenVersion,
} from "./guest_abi.js";

/**
 * The entry point for an RV32 vCPU's ECALL exit: hypercall number from a7, arguments from
 * a0..a5, and the return value goes back in a0 (a negative Xen errno on failure). Register values
 * are taken as unsigned 32-bit. Anything the guest asks the scheduler for (yield, block, poll,
 * shutdown) is left in domain.vcpus[vcpuId].schedRequest for the caller to act on.
 *
 * Unknown hypercalls and sub-ops are -ENOSYS; bad guest pointers are -EFAULT; this function does
 * not throw on any guest input.
 */
export function dispatchHypercall(
  domain: Domain,
  vcpuId: number,
  nr: number,
  a0: number,
  a1: number,
  a2: number,
  _a3 = 0,
  _a4 = 0,
  _a5 = 0,
): number {
  if (domain.dying || domain.vcpu(vcpuId) === undefined) return err("ESRCH");
  const x0 = a0 >>> 0;
  const x1 = a1 >>> 0;
  const x2 = a2 >>> 0;
  switch (nr >>> 0) {
    case Hypercall.memory_op:
      return memoryOp(domain, x0, x1);
    case Hypercall.xen_version:
      return xenVersion(domain, x0, x1);
    case Hypercall.console_io:
      return consoleIo(domain, x0, x1, x2);
    case Hypercall.grant_table_op:
      return grantTableOp(domain, x0, x1, x2);
    case Hypercall.vcpu_op:
      return vcpuOp(domain, x0, x1, x2);
    case Hypercall.sched_op:
      return schedOp(domain, vcpuId, x0, x1);
    case Hypercall.event_channel_op:
      return eventChannelOp(domain, x0, x1);
    case Hypercall.hvm_op:
      return hvmOp(domain, x0, x1);
    case Hypercall.sysctl:
      return sysctl(domain, x0);
    case Hypercall.domctl:
      return domctl(domain, x0);
    default:
      return err("ENOSYS");
  }
}
