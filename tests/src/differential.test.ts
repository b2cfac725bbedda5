import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LINUX_PROGRAMS, linuxProgramPath } from "@xenon/guests";
import { runProcess, runXenon } from "./helpers/run.js";

/**
 * Differential tests: the same static RV32 ELF under qemu-riscv32 (the reference) and under
 * `xenon run --linux-abi`; stdout, stderr and the exit status must be identical. Each program is
 * built twice, for rv32ima and for rv32imac (compressed instructions).
 */
for (const isa of ["rv32ima", "rv32imac"] as const) {
  describe(`differential vs qemu-riscv32 (${isa})`, () => {
    for (const name of LINUX_PROGRAMS) {
      test(name, async () => {
        const elf = linuxProgramPath(name, isa);
        const [ref, ours] = await Promise.all([
          runProcess("qemu-riscv32", [elf]),
          runXenon(["run", "--linux-abi", elf]),
        ]);
        assert.equal(ref.signal, null, `qemu was killed: ${ref.stderr.toString()}`);
        assert.ok(ref.stdout.length > 0, "the reference printed nothing: the program proves nothing");
        assert.equal(ours.stderr.toString(), ref.stderr.toString(), "stderr differs");
        assert.equal(ours.stdout.toString(), ref.stdout.toString(), "stdout differs");
        assert.equal(ours.status, ref.status, "exit status differs");
      });
    }
  });
}
