/**
 * ELF32 little-endian RISC-V executable parsing: just enough to load a static guest image
 * (program headers of type PT_LOAD, the entry point). Every field read from the file is
 * bounds-checked: a malformed image gets an ElfError naming the rule, never a crash.
 */
export const EM_RISCV = 243;
export const PT_LOAD = 1;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
/** e_flags: the image uses compressed instructions. */
export const EF_RISCV_RVC = 0x1;

export interface ElfSegment {
  /** Guest address the segment is loaded at (p_paddr for kernels, p_vaddr for user programs). */
  readonly vaddr: number;
  readonly paddr: number;
  /** Bytes from the file; memsz - data.length bytes of zeroes follow. */
  readonly data: Uint8Array;
  readonly memsz: number;
  /** PF_R | PF_W | PF_X */
  readonly flags: number;
}

export interface ElfImage {
  readonly entry: number;
  readonly flags: number;
  readonly segments: readonly ElfSegment[];
}

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ElfError";
  }
}

const MAX_SEGMENTS = 64;

export function parseElf32(file: Uint8Array): ElfImage {
  if (file.length < 52) throw new ElfError(`file is ${file.length} bytes, shorter than an ELF32 header`);
  if (file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) {
    throw new ElfError("not an ELF file (bad magic)");
  }
  if (file[4] !== 1) throw new ElfError("not a 32-bit ELF (EI_CLASS must be ELFCLASS32)");
  if (file[5] !== 1) throw new ElfError("not little-endian (EI_DATA must be ELFDATA2LSB)");
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = dv.getUint16(16, true);
  if (type !== 2) throw new ElfError(`e_type ${type} is not ET_EXEC (static executables only)`);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) throw new ElfError(`e_machine ${machine} is not RISC-V (${EM_RISCV})`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const flags = dv.getUint32(36, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phentsize < 32) throw new ElfError(`e_phentsize ${phentsize} too small`);
  if (phnum > MAX_SEGMENTS) throw new ElfError(`e_phnum ${phnum} exceeds ${MAX_SEGMENTS}`);
  if (phoff + phnum * phentsize > file.length) throw new ElfError("program headers run past the end of the file");
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const offset = dv.getUint32(ph + 4, true);
    const vaddr = dv.getUint32(ph + 8, true);
    const paddr = dv.getUint32(ph + 12, true);
    const filesz = dv.getUint32(ph + 16, true);
    const memsz = dv.getUint32(ph + 20, true);
    const pflags = dv.getUint32(ph + 24, true);
    if (filesz > memsz) throw new ElfError(`segment ${i}: p_filesz ${filesz} > p_memsz ${memsz}`);
    if (offset + filesz > file.length) throw new ElfError(`segment ${i}: file data runs past the end of the file`);
    if (vaddr + memsz > 2 ** 32) throw new ElfError(`segment ${i}: wraps the 32-bit address space`);
    if (memsz === 0) continue;
    segments.push({ vaddr, paddr, data: file.subarray(offset, offset + filesz), memsz, flags: pflags });
  }
  if (segments.length === 0) throw new ElfError("no loadable segments");
  const sorted = [...segments].sort((a, b) => a.vaddr - b.vaddr);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (prev.vaddr + prev.memsz > cur.vaddr) throw new ElfError("loadable segments overlap");
  }
  return { entry, flags, segments };
}
