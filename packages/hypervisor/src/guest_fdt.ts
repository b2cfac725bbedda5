/**
 * The device tree the core hands each RV32 guest in a1 (libxl's libxl_arm.c job): memory, cpus,
 * the Xen hypervisor node and /chosen. Guests trust it rather than fixed addresses, as Xen tells
 * Arm guests to.
 *
 * Layout (the guest runtime's fdt reader depends on these names):
 *   /                #address-cells = 2, #size-cells = 2
 *   /chosen          bootargs, xenon,domid
 *   /cpus            timebase-frequency; cpu@N { device_type = "cpu", reg = N, riscv,isa }
 *   /memory@80000000 device_type = "memory", reg = RAM
 *   /hypervisor      compatible = "xen,xen-4.17", "xen,xen"; reg = the grant-table window
 *                    (guest-physical space reserved for add_to_physmap of grant frames and
 *                    shared_info); xenon,upcall-irq = 9 (the supervisor external interrupt)
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

  return writeFdt(new Fdt(root));
}
