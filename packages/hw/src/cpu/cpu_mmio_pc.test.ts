import assert from "node:assert/strict";
import { it } from "node:test";
import { ExitReason } from "./exit.js";
import { Asm, C, I, Reg } from "./test_asm.js";
import { MMIO_BASE, RAM_BASE, TestMachine } from "./test_machine.js";
import { VcpuSlot } from "./vcpu_state.js";

it("an MMIO exit records the address of the instruction, for 4- and 2-byte forms", () => {
  const m = new TestMachine();
  const a = new Asm(RAM_BASE);
  a.i(I.lui(Reg.a0, MMIO_BASE >>> 12), I.lw(Reg.a1, Reg.a0, 8)).c(C.sw(Reg.a1, Reg.a0, 4));
  m.load(a);
  assert.equal(m.cpu.run(10), ExitReason.MMIO);
  assert.equal(m.state[VcpuSlot.MMIO_PC]! >>> 0, RAM_BASE + 4);
  assert.equal(m.pc >>> 0, RAM_BASE + 8);
  assert.equal(m.cpu.run(10), ExitReason.MMIO);
  assert.equal(m.state[VcpuSlot.MMIO_PC]! >>> 0, RAM_BASE + 8);
  assert.equal(m.pc >>> 0, RAM_BASE + 10);
});
