/**
 * Building a domain's initial memory image (Xen's domain builder, libxenguest's job): RAM
 * populated at GUEST_RAM_BASE, the kernel's PT_LOAD segments copied in at their physical
 * addresses, and the boot vCPU's entry state — pc = entry, a0 = vCPU id, a1 = the guest-physical
 * address of the device tree, which goes at the top of RAM (as Xen on Arm places the DTB high).
 */
import { type ElfImage, PAGE_SIZE, parseElf32, VcpuSlot } from "@xenon/hw";
import type { Domain } from "./domain.js";
import { populateRange } from "./memory.js";
import { GUEST_RAM_BASE, P2mType } from "./p2m/types.js";

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

/** A range of guest RAM (guest-physical, page aligned). */
export interface RamBank {
  readonly gpa: number;
  readonly bytes: number;
}

/** A range of host RAM (host-physical, page aligned): static memory, a static shared region. */
export interface HostRange {
  readonly hpa: number;
  readonly bytes: number;
}

/**
 * Dom0less static memory (`xen,static-mem`): the domain's RAM will come only from these host
 * ranges, which the caller has already reserved in the frame allocator so no one else can take
 * them. Call before the domain has any RAM.
 */
export function assignStaticMemory(d: Domain, ranges: readonly HostRange[]): void {
  const mfns: number[] = [];
  for (const r of ranges) {
    if (r.hpa % PAGE_SIZE !== 0 || r.bytes <= 0 || r.bytes % PAGE_SIZE !== 0)
      throw new DomainBuildError(
        `static memory [0x${r.hpa.toString(16)}, +0x${r.bytes.toString(16)}) is not page aligned`,
      );
    for (let i = 0; i < r.bytes / PAGE_SIZE; i++) mfns.push(r.hpa / PAGE_SIZE + i);
  }
  d.pages.assignStatic(mfns, (mfn) => d.memory.scrub(mfn));
}

/**
 * Dom0less static shared memory: maps host range `r` at guest address `gpa` as static_shared_rw
 * (the owner's and every borrower's view alike). The frames belong to no domain's page list —
 * they were reserved at boot and stay so — so no domain's release can free them under another.
 */
export function mapStaticShared(d: Domain, r: HostRange, gpa: number): void {
  if (r.hpa % PAGE_SIZE !== 0 || gpa % PAGE_SIZE !== 0 || r.bytes <= 0 || r.bytes % PAGE_SIZE !== 0)
    throw new DomainBuildError(`shared memory at 0x${gpa.toString(16)} is not page aligned`);
  const gfn = gpa / PAGE_SIZE;
  const mfn = r.hpa / PAGE_SIZE;
  for (let i = 0; i < r.bytes / PAGE_SIZE; i++) {
    if (d.p2m.get(gfn + i) !== null || d.p2m.set(gfn + i, mfn + i, P2mType.static_shared_rw) < 0)
      throw new DomainBuildError(`cannot map shared memory at gfn 0x${(gfn + i).toString(16)}`);
  }
}

/**
 * Populates guest RAM — `ramBytes` at GUEST_RAM_BASE, or the given banks (a direct-mapped
 * domain's banks sit at their host addresses) — loads the ELF and the device tree, and returns
 * where things went. The device tree goes at the top of the bank holding the kernel's entry.
 * Refuses (DomainBuildError) an image that does not fit in one bank or overlaps the device tree.
 */
export function buildDomainMemory(
  d: Domain,
  kernel: Uint8Array | ElfImage,
  ramBytes: number,
  fdt?: Uint8Array,
  banks: readonly RamBank[] = [{ gpa: GUEST_RAM_BASE, bytes: ramBytes }],
): KernelPlacement {
  const image = kernel instanceof Uint8Array ? parseElf32(kernel) : kernel;
  for (const b of banks) {
    if (b.bytes <= 0 || b.bytes % PAGE_SIZE !== 0 || b.gpa % PAGE_SIZE !== 0)
      throw new DomainBuildError(`RAM bank of ${b.bytes} bytes at 0x${b.gpa.toString(16)} is not page aligned`);
    if (b.gpa + b.bytes > 2 ** 32)
      throw new DomainBuildError(`RAM of ${b.bytes} bytes at 0x${b.gpa.toString(16)} passes 4 GiB`);
  }
  const bankOf = (a: number, len: number) => banks.find((b) => a >= b.gpa && a + len <= b.gpa + b.bytes);
  let kernelEnd = 0;
  for (const seg of image.segments) {
    if (bankOf(seg.paddr, seg.memsz) === undefined) {
      throw new DomainBuildError(
        `kernel segment [0x${seg.paddr.toString(16)}, +0x${seg.memsz.toString(16)}) is outside guest RAM`,
      );
    }
  }
  const home = bankOf(image.entry, 1);
  if (home === undefined) throw new DomainBuildError(`kernel entry 0x${image.entry.toString(16)} is outside guest RAM`);
  for (const seg of image.segments) {
    if (seg.paddr >= home.gpa && seg.paddr < home.gpa + home.bytes)
      kernelEnd = Math.max(kernelEnd, seg.paddr + seg.memsz);
  }
  if (image.entry >= kernelEnd) {
    throw new DomainBuildError(`kernel entry 0x${image.entry.toString(16)} is not inside the image`);
  }
  // The device tree sits 8-byte aligned in the last pages of the kernel's bank.
  const ramEnd = home.gpa + home.bytes;
  const fdtGpa = fdt === undefined ? 0 : Math.floor((ramEnd - fdt.length - PAGE_SIZE) / PAGE_SIZE) * PAGE_SIZE;
  if (fdt !== undefined && fdtGpa < kernelEnd)
    throw new DomainBuildError("no room for the device tree above the kernel");

  for (const b of banks) {
    const rc = populateRange(d, b.gpa / PAGE_SIZE, b.bytes / PAGE_SIZE);
    if (rc < 0)
      throw new DomainBuildError(
        `cannot populate ${b.bytes} bytes of RAM at 0x${b.gpa.toString(16)} (error ${rc}): over max_mem, static memory or host memory?`,
      );
  }
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
