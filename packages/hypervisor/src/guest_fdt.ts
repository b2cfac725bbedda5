/**
 * The device tree the core hands each RV32 guest in a1 (libxl's libxl_arm.c job): memory, cpus,
 * the Xen hypervisor node and /chosen. Guests trust it rather than fixed addresses, as Xen tells
 * Arm guests to.
 *
 * Layout (the guest runtime's fdt reader depends on these names):
 *   /                #address-cells = 2, #size-cells = 2
 *   /chosen          bootargs, xenon,domid; linux,initrd-start/-end (u64) when it has a ramdisk
 *   /cpus            timebase-frequency; cpu@N { device_type = "cpu", reg = N, riscv,isa }
 *   /memory@80000000 device_type = "memory", reg = RAM
 *   /hypervisor      compatible = "xen,xen-4.17", "xen,xen"; reg = the grant-table window
 *                    (guest-physical space reserved for add_to_physmap of grant frames and
 *                    shared_info); xenon,upcall-irq = 9 (the supervisor external interrupt);
 *                    with virtio devices also interrupt-controller, #interrupt-cells = 1,
 *                    phandle 65000: its interrupts are event-channel ports
 *   /xen_iommu       compatible = "xen,grant-dma", #iommu-cells = 1, phandle 65001 (when a
 *                    virtio device uses grants; Xen's GUEST_PHANDLE_IOMMU)
 *   /virtio@<base>   compatible = "virtio,mmio"; reg = the window; interrupt-parent = the
 *                    hypervisor node, interrupts = <the guest's event-channel port>;
 *                    dma-coherent; iommus = <&xen_iommu BACKEND_DOMID> when grants are used
 *   /<name>@<base>   a passed-through device (dom0less /passthrough): compatible, reg = its
 *                    guest window, interrupt-parent = the hypervisor node, interrupts = <port>
 */
import { TIMEBASE_HZ } from "@xenon/hw";
import { Fdt, FdtNode } from "./fdt/tree.js";
import { str, strList, u32 } from "./fdt/values.js";
import { writeFdt } from "./fdt/writer.js";
import { GUEST_RAM_BASE } from "./p2m/types.js";

/** Guest-physical window for grant-table frames and shared_info (below RAM, never populated by the builder). */
export const GUEST_GNTTAB_BASE = 0x7f000000;
export const GUEST_GNTTAB_SIZE = 0x00100000;
/** The interrupt the event upcall arrives on: scause 9, supervisor external. */
export const GUEST_UPCALL_IRQ = 9;
/** Xen on Arm's virtio-mmio area (GUEST_VIRTIO_MMIO_BASE) and per-device window (VIRTIO_MMIO_DEV_SIZE). */
export const GUEST_VIRTIO_MMIO_BASE = 0x0200_0000;
export const GUEST_VIRTIO_MMIO_SIZE = 0x200;
const PHANDLE_EVTCHN_CONTROLLER = 65000;
const PHANDLE_XEN_IOMMU = 65001;

/** One virtio-mmio device in a guest's tree. */
export interface GuestVirtioMmio {
  readonly base: number;
  readonly size: number;
  /** The guest's event-channel port the device interrupts on. */
  readonly evtchn: number;
  readonly backendDomid: number;
  /** Grant DMA (xen,grant-dma): the device reaches only granted pages. */
  readonly grants: boolean;
}

export interface GuestFdtConfig {
  readonly domid: number;
  readonly name: string;
  readonly vcpus: number;
  readonly ramBytes: number;
  readonly bootargs?: string;
  /**
   * RAM banks when not the single bank of ramBytes at GUEST_RAM_BASE (a direct-mapped domain);
   * the bank holding the kernel first, since guests take their heap from the first one.
   */
  readonly ramBanks?: ReadonlyArray<{ readonly gpa: number; readonly bytes: number }>;
  /** Static shared memory regions, each a /reserved-memory/xen-shmem@<gpa> node as Xen writes them. */
  readonly sharedMemory?: ReadonlyArray<{ readonly id: string; readonly gpa: number; readonly bytes: number }>;
  readonly virtio?: readonly GuestVirtioMmio[];
  /** Where the builder put the domain's ramdisk: [start, end) guest-physical. */
  readonly initrd?: { readonly start: number; readonly end: number };
  /** Devices passed through to the guest (registers at `base`, interrupt on port `evtchn`). */
  readonly passthrough?: ReadonlyArray<{
    readonly name: string;
    readonly compatible: string;
    readonly base: number;
    readonly size: number;
    readonly evtchn: number;
  }>;
}

function cells64(v: number): number[] {
  return [Math.floor(v / 2 ** 32), v >>> 0];
}

export function buildGuestFdt(cfg: GuestFdtConfig): Uint8Array {
  const root = new FdtNode("");
  root.set("#address-cells", u32(2)).set("#size-cells", u32(2));
  root.set("compatible", strList("xenon,rv32-guest")).set("model", str(`Xenon guest ${cfg.name}`));

  const chosen = root.addChild("chosen");
  chosen.set("bootargs", str(cfg.bootargs ?? ""));
  chosen.set("xenon,domid", u32(cfg.domid));
  // Always 64-bit, so the tree's size does not depend on where the ramdisk goes.
  if (cfg.initrd !== undefined) {
    chosen.set("linux,initrd-start", u32(...cells64(cfg.initrd.start)));
    chosen.set("linux,initrd-end", u32(...cells64(cfg.initrd.end)));
  }

  const cpus = root.addChild("cpus");
  cpus.set("#address-cells", u32(1)).set("#size-cells", u32(0)).set("timebase-frequency", u32(TIMEBASE_HZ));
  for (let i = 0; i < cfg.vcpus; i++) {
    const cpu = cpus.addChild(`cpu@${i}`);
    cpu
      .set("device_type", str("cpu"))
      .set("compatible", str("riscv"))
      .set("reg", u32(i))
      .set("riscv,isa", str("rv32imac"));
  }

  const banks = cfg.ramBanks ?? [{ gpa: GUEST_RAM_BASE, bytes: cfg.ramBytes }];
  const mem = root.addChild(`memory@${banks[0]!.gpa.toString(16)}`);
  mem
    .set("device_type", str("memory"))
    .set("reg", u32(...banks.flatMap((b) => [...cells64(b.gpa), ...cells64(b.bytes)])));

  if (cfg.sharedMemory !== undefined && cfg.sharedMemory.length > 0) {
    const rsv = root.addChild("reserved-memory");
    rsv.set("#address-cells", u32(2)).set("#size-cells", u32(2)).set("ranges", new Uint8Array(0));
    for (const shm of cfg.sharedMemory) {
      const n = rsv.addChild(`xen-shmem@${shm.gpa.toString(16)}`);
      n.set("compatible", str("xen,shared-memory-v1"));
      n.set("reg", u32(...cells64(shm.gpa), ...cells64(shm.bytes)));
      n.set("xen,id", str(shm.id));
      n.set("xen,offset", u32(0, 0));
    }
  }

  const hyp = root.addChild("hypervisor");
  hyp.set("compatible", strList("xen,xen-4.17", "xen,xen"));
  hyp.set("reg", u32(...cells64(GUEST_GNTTAB_BASE), ...cells64(GUEST_GNTTAB_SIZE)));
  hyp.set("xenon,upcall-irq", u32(GUEST_UPCALL_IRQ));

  const virtio = cfg.virtio ?? [];
  const passthrough = cfg.passthrough ?? [];
  if (virtio.length > 0 || passthrough.length > 0) {
    hyp.set("interrupt-controller", new Uint8Array(0)).set("#interrupt-cells", u32(1));
    hyp.set("phandle", u32(PHANDLE_EVTCHN_CONTROLLER));
  }
  if (virtio.some((v) => v.grants)) {
    const iommu = root.addChild("xen_iommu");
    iommu.set("compatible", str("xen,grant-dma")).set("#iommu-cells", u32(1)).set("phandle", u32(PHANDLE_XEN_IOMMU));
  }
  for (const v of virtio) {
    const n = root.addChild(`virtio@${v.base.toString(16)}`);
    n.set("compatible", str("virtio,mmio"));
    n.set("reg", u32(...cells64(v.base), ...cells64(v.size)));
    n.set("interrupt-parent", u32(PHANDLE_EVTCHN_CONTROLLER)).set("interrupts", u32(v.evtchn));
    n.set("dma-coherent", new Uint8Array(0));
    if (v.grants) n.set("iommus", u32(PHANDLE_XEN_IOMMU, v.backendDomid));
  }
  for (const p of passthrough) {
    const n = root.addChild(`${p.name}@${p.base.toString(16)}`);
    n.set("compatible", str(p.compatible));
    n.set("reg", u32(...cells64(p.base), ...cells64(p.size)));
    n.set("interrupt-parent", u32(PHANDLE_EVTCHN_CONTROLLER)).set("interrupts", u32(p.evtchn));
  }

  return writeFdt(new Fdt(root));
}
