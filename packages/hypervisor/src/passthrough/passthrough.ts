/**
 * Device passthrough (Xen's XEN_DOMCTL_assign_device with dom0less `xen,reg`/`xen,path`): the
 * host's DMA-capable emulated devices, each assignable to one domain. Assigning a device gives the
 * domain its registers at a guest-physical window (accesses exit to the core, which hands them to
 * the device: the "hardware"), its interrupt as a pirq event-channel port, and — the point of an
 * IOMMU — DMA that reaches only that domain's own RAM, through the domain's I/O page tables
 * (iommu_domain.ts, superpages where the memory allows). A DMA anywhere else faults in the IOMMU
 * and moves nothing. Domain destruction takes its devices back (reset) before its memory goes.
 */
import { DMA_ENGINE_WINDOW, DmaEngine, Iommu } from "@xenon/hw";
import type { Domain } from "../domain.js";
import { evtchnBindPirq, evtchnClose, evtchnRaisePirq } from "../event_channel/event_channel.js";
import type { Hypervisor } from "../hypervisor.js";
import { err } from "../public/errno.js";
import { IommuDomain } from "./iommu_domain.js";

/** The device models a host tree may name (compatible strings). */
export const PASSTHROUGH_MODELS = ["xenon,dma-engine"] as const;

export interface PassthroughDeviceInfo {
  /** Its node in the host tree (dom0less `xen,path` names it). */
  readonly path: string;
  readonly compatible: string;
  /** Host-physical register window. */
  readonly base: number;
  readonly size: number;
  /** IOMMU requester id. */
  readonly sid: number;
  readonly domid: number | null;
  readonly guestBase: number | null;
  readonly guestIrqPort: number | null;
  readonly dmaFaults: number;
}

interface HostDevice {
  readonly path: string;
  readonly compatible: string;
  readonly base: number;
  readonly size: number;
  readonly sid: number;
  readonly model: DmaEngine;
  assigned: { d: Domain; guestBase: number; port: number } | null;
  faults: number;
}

export class Passthrough {
  /** The host IOMMU every passthrough device's DMA goes through. */
  readonly iommu: Iommu;
  private readonly devices = new Map<string, HostDevice>();
  private readonly domains = new Map<number, IommuDomain>();

  constructor(private readonly hv: Hypervisor) {
    this.iommu = new Iommu(hv.memory);
  }

  /** A device of the host (from its tree). Throws on a duplicate path or an unknown model. */
  addDevice(path: string, compatible: string, base: number, size: number): void {
    if (this.devices.has(path)) throw new Error(`${path}: a device is there already`);
    if (!(PASSTHROUGH_MODELS as readonly string[]).includes(compatible))
      throw new Error(`${path}: no device model for "${compatible}" (known: ${PASSTHROUGH_MODELS.join(", ")})`);
    if (size < DMA_ENGINE_WINDOW) throw new Error(`${path}: a register window of ${size} bytes is too small`);
    const sid = this.devices.size + 1;
    const dev: HostDevice = {
      path,
      compatible,
      base,
      size,
      sid,
      model: new DmaEngine(this.iommu, sid, () => {
        const a = dev.assigned;
        if (a !== null) evtchnRaisePirq(this.hv, a.d, a.port);
      }),
      assigned: null,
      faults: 0,
    };
    this.devices.set(path, dev);
  }

  has(path: string): boolean {
    return this.devices.has(path);
  }

  /**
   * Gives device `path` to domain `domid`: registers at [guestBase, guestBase + size) (which must be
   * a hole in its P2M), interrupt on port `guestIrqPort`, DMA into its RAM only. 0, -ENODEV (no
   * such device), -EBUSY (assigned already, or the port is taken), -ESRCH, -EINVAL (window).
   */
  assign(domid: number, path: string, guestBase: number, guestIrqPort: number): number {
    const dev = this.devices.get(path);
    if (dev === undefined) return err("ENODEV");
    if (dev.assigned !== null) return err("EBUSY");
    const d = this.hv.domains.getLive(domid);
    if (d === undefined) return err("ESRCH");
    if (guestBase % 4096 !== 0 || guestBase + dev.size > 2 ** 32) return err("EINVAL");
    for (let g = guestBase / 4096; g < (guestBase + dev.size) / 4096; g++)
      if (d.p2m.get(g) !== null) return err("EINVAL");
    for (const o of this.devices.values())
      if (
        o.assigned?.d === d &&
        guestBase < o.assigned.guestBase + o.size &&
        o.assigned.guestBase < guestBase + dev.size
      )
        return err("EINVAL");
    const port = evtchnBindPirq(d, guestIrqPort, dev.sid);
    if (port < 0) return port;
    let dom = this.domains.get(domid);
    if (dom === undefined) {
      dom = new IommuDomain(this.hv, d.p2m);
      this.domains.set(domid, dom);
      const p2m = d.p2m;
      const prev = p2m.onChange;
      p2m.onChange = (gfn) => {
        prev?.(gfn);
        this.domains.get(domid)?.sync(gfn);
      };
    }
    dev.model.reset();
    this.iommu.attach(dev.sid, dom.ctx);
    dev.assigned = { d, guestBase, port };
    this.hv.ioreq.passthroughChanged(domid);
    return 0;
  }

  /** Takes the device back: its DMA stops reaching the domain at once; the device is reset. */
  deassign(path: string): number {
    const dev = this.devices.get(path);
    if (dev === undefined) return err("ENODEV");
    const a = dev.assigned;
    if (a === null) return err("EINVAL");
    this.iommu.detach(dev.sid);
    dev.model.reset();
    dev.assigned = null;
    if (!a.d.dying) evtchnClose(this.hv, a.d, a.port, true);
    if (![...this.devices.values()].some((o) => o.assigned?.d === a.d)) {
      this.domains.get(a.d.domid)?.destroy();
      this.domains.delete(a.d.domid);
    }
    this.hv.ioreq.passthroughChanged(a.d.domid);
    return 0;
  }

  /** Domain destruction: its devices come back before its frames are freed. */
  domainDestroyed(domid: number): void {
    for (const dev of this.devices.values()) if (dev.assigned?.d.domid === domid) this.deassign(dev.path);
  }

  /** Whether `domid` has devices (a domain with one cannot be saved or migrated). */
  hasDevices(domid: number): boolean {
    return [...this.devices.values()].some((d) => d.assigned?.d.domid === domid);
  }

  /** Guest-physical [start, end) windows of `domid`'s devices (their accesses exit to the core). */
  windows(domid: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const dev of this.devices.values())
      if (dev.assigned?.d.domid === domid) out.push([dev.assigned.guestBase, dev.assigned.guestBase + dev.size]);
    return out;
  }

  /**
   * A vCPU of `domid` accessed `addr`: if one of its devices is there, the device answers (the
   * value for a read, 0 for a write); null otherwise.
   */
  access(domid: number, addr: number, size: number, write: boolean, value: number): number | null {
    for (const dev of this.devices.values()) {
      const a = dev.assigned;
      if (a === null || a.d.domid !== domid || addr < a.guestBase || addr >= a.guestBase + dev.size) continue;
      const off = addr - a.guestBase;
      if (off >= DMA_ENGINE_WINDOW) return 0; // past the registers: reads 0, writes ignored
      if (!write) return dev.model.read(off, size) >>> 0;
      const before = this.iommu.faultCount;
      dev.model.write(off, size, value);
      dev.faults += this.iommu.faultCount - before;
      return 0;
    }
    return null;
  }

  /** Every host device and where it is (xl's view). */
  list(): PassthroughDeviceInfo[] {
    return [...this.devices.values()].map((d) => ({
      path: d.path,
      compatible: d.compatible,
      base: d.base,
      size: d.size,
      sid: d.sid,
      domid: d.assigned?.d.domid ?? null,
      guestBase: d.assigned?.guestBase ?? null,
      guestIrqPort: d.assigned?.port ?? null,
      dmaFaults: d.faults,
    }));
  }

  /** The I/O page sizes mapped for `domid` (null: no device). */
  iommuPages(domid: number): IommuDomain["counts"] | null {
    return this.domains.get(domid)?.counts ?? null;
  }
}
