import type { Domain } from "./domain.js";
import { markEventsPending } from "./event_channel/event_2l.js";
import type { Hypervisor } from "./hypervisor.js";
import { isValidGfn, P2mType } from "./p2m/types.js";
import { err } from "./public/errno.js";
import { VcpuInfo } from "./public/layout.js";
import { vcpuInfoInFrame } from "./shared_info.js";

/**
 * VCPUOP_register_vcpu_info: moves vCPU `vcpuId`'s vcpu_info to `offset` inside the domain's RAM
 * page `gfn` (every vCPU but 0 needs this to receive events; vCPU 0 may move out of shared_info).
 * The block must be 8-aligned and inside the page, the page the domain's own writable RAM, and a
 * vCPU registers once (-EINVAL otherwise; -ENOENT for no such vCPU). The page gains a reference,
 * so giving it back to Xen does not free it under the core. As in Xen, the old contents are
 * copied over and every selector bit plus the upcall are raised so the guest rescans.
 */
export function registerVcpuInfo(hv: Hypervisor, d: Domain, vcpuId: number, gfn: number, offset: number): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (d.dying || v.placement !== null) return err("EINVAL");
  if (!Number.isInteger(offset) || offset < 0 || offset % 8 !== 0 || offset + VcpuInfo.size > 4096) {
    return err("EINVAL");
  }
  const e = isValidGfn(gfn) ? d.p2m.get(gfn) : null;
  if (e === null || e.type !== P2mType.ram_rw || !d.pages.get(e.mfn)) return err("EINVAL");
  const next = vcpuInfoInFrame(hv.memory, e.mfn, offset);
  const old = v.vcpuInfo;
  next.u8.set(old.u8.subarray(old.off, old.off + VcpuInfo.size), next.off);
  const sel = (next.off + VcpuInfo.fields.evtchn_pending_sel.offset) >>> 2;
  Atomics.store(next.i32, sel, -1);
  Atomics.store(next.i32, sel + 1, -1);
  Atomics.store(next.u8, next.off + VcpuInfo.fields.evtchn_upcall_pending.offset, 0);
  v.vcpuInfo = next;
  v.placement = { gfn, mfn: e.mfn, offset };
  markEventsPending(hv, d, v);
  return 0;
}
