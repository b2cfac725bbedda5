import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { describe, it } from "node:test";
import {
  CPUBENCH_PROGRAM,
  GUEST_RAM_BASE,
  guestImagePath,
  LINUX_ISAS,
  LINUX_PROGRAMS,
  type LinuxIsa,
  linuxProgramPath,
  NATIVE_IMAGES,
} from "./index.js";

const EM_RISCV = 243;
const EF_RISCV_RVC = 0x1;

interface ElfHeader {
  cls: number;
  data: number;
  type: number;
  machine: number;
  entry: number;
  flags: number;
}

function readElfHeader(path: string): ElfHeader {
  const b = readFileSync(path);
  assert.ok(b.length >= 52, `${path}: shorter than an ELF32 header`);
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${path}: no ELF magic`);
  return {
    cls: b[4]!,
    data: b[5]!,
    type: b.readUInt16LE(16),
    machine: b.readUInt16LE(18),
    entry: b.readUInt32LE(24),
    flags: b.readUInt32LE(36),
  };
}

/** Names in the ELF32 .symtab (images are linked without -s, so it is there). */
function elfSymbolNames(path: string): Set<string> {
  const b = readFileSync(path);
  const shoff = b.readUInt32LE(32);
  const shentsize = b.readUInt16LE(46);
  const shnum = b.readUInt16LE(48);
  const names = new Set<string>();
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (b.readUInt32LE(sh + 4) !== 2) continue; // SHT_SYMTAB
    const off = b.readUInt32LE(sh + 16);
    const size = b.readUInt32LE(sh + 20);
    const strtab = shoff + b.readUInt32LE(sh + 24) * shentsize;
    const stroff = b.readUInt32LE(strtab + 16);
    for (let s = off; s + 16 <= off + size; s += 16) {
      const nameOff = b.readUInt32LE(s);
      if (nameOff === 0) continue;
      const start = stroff + nameOff;
      names.add(b.toString("latin1", start, b.indexOf(0, start)));
    }
  }
  return names;
}

function assertRv32Executable(path: string, compressed: boolean): ElfHeader {
  const h = readElfHeader(path);
  assert.equal(h.cls, 1, `${path}: not ELFCLASS32`);
  assert.equal(h.data, 1, `${path}: not little-endian`);
  assert.equal(h.type, 2, `${path}: not ET_EXEC`);
  assert.equal(h.machine, EM_RISCV, `${path}: not RISC-V`);
  assert.equal((h.flags & EF_RISCV_RVC) !== 0, compressed, `${path}: RVC flag should be ${compressed}`);
  return h;
}

describe("@xenon/guests images", () => {
  it("native images are rv32imac executables entered at the RAM base", () => {
    for (const name of NATIVE_IMAGES) {
      const path = guestImagePath(name);
      assert.ok(isAbsolute(path));
      const h = assertRv32Executable(path, true);
      assert.equal(h.entry, GUEST_RAM_BASE, `${name}: entry`);
    }
  });

  it("lists the event, grant, scheduling and robustness images", () => {
    for (const name of ["pingpong", "grantshare", "spin", "hostile"]) assert.ok(NATIVE_IMAGES.includes(name), name);
  });

  it("native images that use the Xen runtime carry its trap vector and ABI entry points", () => {
    // The runtime is linked with --gc-sections, so a symbol survives only if the image uses it.
    const want: Record<string, string[]> = {
      pingpong: ["trap_entry", "evtchn_do_upcall", "evtchn_send", "bootarg_u32", "timer_ticks"],
      grantshare: ["trap_entry", "gnttab_grant_access", "gnttab_end_access", "gnttab_map", "gnttab_unmap"],
      spin: ["bootarg_u32"],
      hostile: ["trap_entry", "gnttab_init", "events_init", "hostile_victim", "malloc"],
    };
    for (const [name, symbols] of Object.entries(want)) {
      const names = elfSymbolNames(guestImagePath(name));
      for (const sym of symbols) assert.ok(names.has(sym), `${name}: no symbol ${sym}`);
    }
  });

  it("every Linux program exists for both ISAs with the matching RVC flag", () => {
    for (const name of [...LINUX_PROGRAMS, CPUBENCH_PROGRAM]) {
      for (const isa of LINUX_ISAS) {
        const h = assertRv32Executable(linuxProgramPath(name, isa), isa === "rv32imac");
        assert.ok(h.entry >= 0x10000 && h.entry < GUEST_RAM_BASE, `${name}.${isa}: entry at a user address`);
      }
    }
  });

  it("LINUX_PROGRAMS lists the differential programs only", () => {
    assert.ok(!LINUX_PROGRAMS.includes(CPUBENCH_PROGRAM));
    assert.ok(LINUX_PROGRAMS.includes("exitcode"));
  });

  it("missing or malformed names throw clear errors", () => {
    assert.throws(() => guestImagePath("no-such-image"), /not built.*pnpm --filter @xenon\/guests build/);
    assert.throws(() => guestImagePath("../index"), /invalid image name/);
    assert.throws(() => linuxProgramPath("alu", "rv64gc" as never), /unknown ISA/);
  });
});

// qemu-riscv32 is the reference these programs are differential against; it is a system
// dependency of the repo, but the ELF checks above do not need it, so skip rather than fail.
const hasQemu = spawnSync("qemu-riscv32", ["--version"], { stdio: "ignore" }).error === undefined;

describe("Linux programs under qemu-riscv32", { skip: hasQemu ? false : "qemu-riscv32 not installed" }, () => {
  const run = (name: string, isa: LinuxIsa, args: string[] = []) =>
    spawnSync("qemu-riscv32", [linuxProgramPath(name, isa), ...args], { encoding: "utf8", timeout: 30_000 });

  it("print the same output for both ISA builds and exit as intended", () => {
    for (const name of LINUX_PROGRAMS) {
      const [a, c] = [run(name, "rv32ima"), run(name, "rv32imac")];
      const want = name === "exitcode" ? 42 : 0;
      assert.equal(a.status, want, `${name}.rv32ima exit (stderr: ${a.stderr})`);
      assert.equal(c.status, want, `${name}.rv32imac exit (stderr: ${c.stderr})`);
      assert.ok(a.stdout.length > 0, `${name}: no output`);
      assert.equal(c.stdout, a.stdout, `${name}: rv32imac output differs from rv32ima`);
      assert.equal(c.stderr, a.stderr, `${name}: rv32imac stderr differs from rv32ima`);
    }
  });

  it("compute known answers", () => {
    const algo = run("algo", "rv32imac").stdout;
    assert.match(algo, /crc32 "123456789" cbf43926 .* fox 414fa339 /);
    assert.match(algo, /sieve below 20000: 2262 primes/);
    assert.match(algo, /20! = 2432902008176640000\n/);
    assert.match(run("atomics", "rv32ima").stdout, /sc\.w without reservation: first ok 1 second failed 1 mem 2\n/);
    const exit = run("exitcode", "rv32ima");
    assert.match(exit.stderr, /^exitcode: stderr line 2\n$/);
  });

  it("cpubench takes an iteration count and rejects garbage", () => {
    const one = run(CPUBENCH_PROGRAM, "rv32imac", ["1"]);
    assert.equal(one.status, 0);
    assert.match(one.stdout, /^cpubench: 1 iterations, checksum [0-9a-f]{8}\n$/);
    assert.equal(run(CPUBENCH_PROGRAM, "rv32ima", ["1"]).stdout, one.stdout);
    assert.equal(run(CPUBENCH_PROGRAM, "rv32ima", ["x"]).status, 2);
  });
});
