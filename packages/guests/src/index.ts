/**
 * @xenon/guests — RV32 guest images built from the C sources under `c/`.
 *
 * Nothing here runs guest code: this module only tells other packages where the built ELF files
 * are. Build them with `pnpm --filter @xenon/guests build`.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Guest-physical address where a native image's RAM (and its entry point) begins. */
export const GUEST_RAM_BASE = 0x80000000;

/** ISA variants every Linux-ABI program is built for. */
export type LinuxIsa = "rv32ima" | "rv32imac";
export const LINUX_ISAS: readonly LinuxIsa[] = ["rv32ima", "rv32imac"];

/**
 * Linux-ABI differential test programs: each prints deterministic output (identical for both
 * ISA builds and under any correct RV32 Linux-ABI runner) and exits 0, except `exitcode`,
 * which writes to fd 1 and fd 2 and exits 42.
 */
export const LINUX_PROGRAMS: readonly string[] = [
  "alu",
  "muldiv",
  "loadstore",
  "branches",
  "atomics",
  "algo",
  "exitcode",
];

/** The Linux-ABI CPU benchmark: `cpubench [iterations]`, prints a checksum. */
export const CPUBENCH_PROGRAM = "cpubench";

/**
 * Xenon native images (entry a0 = vCPU id, a1 = device-tree address; RAM at GUEST_RAM_BASE).
 * Their boot arguments (/chosen/bootargs) are listed in the package README.
 */
export const NATIVE_IMAGES: readonly string[] = [
  "hello",
  "cpubench",
  "pingpong",
  "grantshare",
  "spin",
  "hostile",
  "polltest",
  "smp",
  "ctl",
  "xsclient",
  "shmem",
  "rngcat",
  "blkstress",
  "dirtier",
  "vconsole",
  "virtioattack",
  "netping",
  "kvstore",
  "dmatest",
];

const NAME = /^[a-z0-9_-]+$/;

// This module compiles to dist/index.js, so the images sit next to it under dist/.
function builtFile(relative: string, what: string): string {
  const path = fileURLToPath(new URL(relative, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(`@xenon/guests: ${what} is not built (${path}); run 'pnpm --filter @xenon/guests build'`);
  }
  return path;
}

/** Absolute path of `dist/images/<name>.elf`; throws if it has not been built. */
export function guestImagePath(name: string): string {
  if (!NAME.test(name)) throw new Error(`@xenon/guests: invalid image name ${JSON.stringify(name)}`);
  return builtFile(`./images/${name}.elf`, `guest image '${name}'`);
}

/** Absolute path of `dist/linux/<name>.<isa>.elf`; throws if it has not been built. */
export function linuxProgramPath(name: string, isa: LinuxIsa): string {
  if (!NAME.test(name)) throw new Error(`@xenon/guests: invalid program name ${JSON.stringify(name)}`);
  if (!LINUX_ISAS.includes(isa)) throw new Error(`@xenon/guests: unknown ISA ${JSON.stringify(isa)}`);
  return builtFile(`./linux/${name}.${isa}.elf`, `Linux program '${name}' (${isa})`);
}
