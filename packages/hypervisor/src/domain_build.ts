/**
 * Building a domain's initial memory image (Xen's domain builder, libxenguest's job): RAM
 * populated at GUEST_RAM_BASE, the kernel's PT_LOAD segments copied in at their physical
 * addresses, and the boot vCPU's entry state — pc = entry, a0 = vCPU id, a1 = the guest-physical
 * address of the device tree, which goes at the top of RAM (as Xen on Arm places the DTB high).
 */
import { type ElfImage, PAGE_SIZE, parseElf32, VcpuSlot } from "@xenon/hw";
import type { Domain } from "./domain.js";
import { populateRange } from "./memory.js";
import { GUEST_RAM_BASE, GUEST_RAM_BASE_GFN } from "./p2m/types.js";

export class DomainBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DomainBuildError";
  }
}

export interface KernelPlacement {
  readonly entry: number;
  /** Guest-physical address of the device tree (0 when none was given). */
  readonly fdtGpa: number;
  /** First guest-physical byte after the kernel image. */
  readonly kernelEnd: number;
}

/**
 * Populates `ramBytes` of RAM at GUEST_RAM_BASE, loads the ELF and the device tree, and returns
 * where things went. Refuses (DomainBuildError, nothing left half-mapped for the caller to miss)
 * an image that does not fit in RAM or overlaps the device tree.
 */
export function buildDomainMemory(
  d: Domain,
  kernel: Uint8Array | ElfImage,
  ramBytes: number,
  fdt?: Uint8Array,
): KernelPlacement {
  const image = kernel instanceof Uint8Array ? parseElf32(kernel) : kernel;
  if (ramBytes <= 0 || ramBytes % PAGE_SIZE !== 0)
    throw new DomainBuildError(`RAM size ${ramBytes} is not a positive multiple of 4 KiB`);
  const ramEnd = GUEST_RAM_BASE + ramBytes;
  if (ramEnd > 2 ** 32) throw new DomainBuildError(`RAM of ${ramBytes} bytes at 0x80000000 passes 4 GiB`);
  let kernelEnd = GUEST_RAM_BASE;
  for (const seg of image.segments) {
    if (seg.paddr < GUEST_RAM_BASE || seg.paddr + seg.memsz > ramEnd) {
      throw new DomainBuildError(
        `kernel segment [0x${seg.paddr.toString(16)}, +0x${seg.memsz.toString(16)}) is outside guest RAM`,
      );
    }
    kernelEnd = Math.max(kernelEnd, seg.paddr + seg.memsz);
  }
  if (image.entry < GUEST_RAM_BASE || image.entry >= kernelEnd) {
    throw new DomainBuildError(`kernel entry 0x${image.entry.toString(16)} is not inside the image`);
  }
  // The device tree sits 8-byte aligned in the last pages of RAM.
  const fdtGpa = fdt === undefined ? 0 : Math.floor((ramEnd - fdt.length - PAGE_SIZE) / PAGE_SIZE) * PAGE_SIZE;
  if (fdt !== undefined && fdtGpa < kernelEnd)
    throw new DomainBuildError("no room for the device tree above the kernel");

  const rc = populateRange(d, GUEST_RAM_BASE_GFN, ramBytes / PAGE_SIZE);
  if (rc < 0)
    throw new DomainBuildError(`cannot populate ${ramBytes} bytes of RAM (error ${rc}): over max_mem or host memory?`);
  for (const seg of image.segments) {
    if (seg.data.length > 0 && d.guest.copyToGuest(seg.paddr, seg.data) < 0) {
      throw new DomainBuildError(`copying the segment at 0x${seg.paddr.toString(16)} failed`);
    }
  }
  if (fdt !== undefined && d.guest.copyToGuest(fdtGpa, fdt) < 0)
    throw new DomainBuildError("copying the device tree failed");
  return { entry: image.entry, fdtGpa, kernelEnd };
}

/** The boot state of vCPU `vcpuId`: supervisor mode at the entry, a0 = vCPU id, a1 = device tree. */
export function initBootVcpuState(state: Int32Array, placement: KernelPlacement, vcpuId: number): void {
  state.fill(0);
  state[VcpuSlot.PRIV] = 1;
  state[VcpuSlot.PC] = placement.entry | 0;
  state[10] = vcpuId;
  state[11] = placement.fdtGpa | 0;
}
