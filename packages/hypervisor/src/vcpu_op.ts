import type { Domain } from "./domain.js";
import { markEventsPending } from "./event_channel/event_2l.js";
import type { Hypervisor } from "./hypervisor.js";
import { isValidGfn, P2mType } from "./p2m/types.js";
import { err } from "./public/errno.js";
import { VcpuInfo } from "./public/layout.js";
import { vcpuInfoInFrame } from "./shared_info.js";
import type { VcpuStartContext } from "./vcpu.js";

/**
 * VCPUOP_initialise: gives a vCPU that never ran its first registers. -ENOENT no such vCPU,
 * -EEXIST already initialised (vCPU 0 always is; Xen's rule), -EINVAL for a non-zero flags word.
 */
export function vcpuInitialise(d: Domain, vcpuId: number, ctx: VcpuStartContext, flags: number): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (d.dying) return err("EINVAL");
  if (v.initialised) return err("EEXIST");
  if (flags !== 0 || ctx.regs.length !== 32) return err("EINVAL");
  v.startContext = { pc: ctx.pc | 0, regs: Int32Array.from(ctx.regs) };
  v.initialised = true;
  return 0;
}

/**
 * VCPUOP_up / VCPUOP_down of one of the caller's own vCPUs. Up needs an initialised vCPU
 * (-EINVAL); either is 0 when the vCPU is in that state already. A vCPU taking itself down stops
 * when the hypercall returns; brought up again it resumes where it stopped.
 */
export function vcpuSetOnline(hv: Hypervisor, d: Domain, vcpuId: number, online: boolean): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (d.dying) return err("EINVAL");
  if (online && !v.initialised) return err("EINVAL");
  if (v.online === online) return 0;
  v.online = online;
  hv.hooks.vcpuOnline?.(d.domid, vcpuId, online);
  return 0;
}

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
