import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExitReason, SIP_SEIP, SSTATUS_SIE } from "./exit.js";
import { Asm, I, Reg } from "./test_asm.js";
import { DATA_BASE, MFN_BASE, RAM_BASE, TestMachine } from "./test_machine.js";
import { VcpuSlot } from "./vcpu_state.js";

const S = VcpuSlot;
const { a0, a1, a2, t0 } = Reg;
const HANDLER = RAM_BASE + 0x800;
/** The line byte: DATA_BASE + 1 (not word-aligned, to check the byte mask). */
const LINE_GPA = DATA_BASE + 1;
const LINE_MFN = MFN_BASE + ((DATA_BASE - RAM_BASE) >>> 12);

/**
 * Main: counts in a0 forever. Handler: a1 += 1, clears the line byte (as a Xen guest clears
 * evtchn_upcall_pending before scanning), returns with sret.
 */
function machine(): TestMachine {
  const m = new TestMachine();
  const a = new Asm(RAM_BASE);
  a.label("loop")
    .i(I.addi(a0, a0, 1))
    .jal(0, "loop");
  a.padTo(HANDLER).i(I.addi(a1, a1, 1), I.lui(t0, DATA_BASE >>> 12), I.sb(0, t0, 1), I.sret());
  m.load(a);
  m.state[S.STVEC] = HANDLER;
  m.state[S.SIE] = SIP_SEIP;
  m.state[S.SSTATUS] = SSTATUS_SIE;
  m.state[S.UPCALL_LINE_MFN] = LINE_MFN;
  m.state[S.UPCALL_LINE_OFF] = LINE_GPA & 0xfff;
  return m;
}

describe("the level-triggered upcall line", () => {
  it("interrupts while the byte is set and stops once the guest clears it", () => {
    const m = machine();
    assert.equal(m.cpu.run(10_000), ExitReason.BUDGET);
    assert.equal(m.x(a1), 0, "no interrupt while the byte is 0");
    m.write(LINE_GPA, new Uint8Array([1]));
    assert.equal(m.cpu.run(10_000), ExitReason.BUDGET);
    assert.equal(m.x(a1), 1, "one interrupt: the handler cleared the byte, so no storm");
    assert.ok(m.x(a0) > 4000, "the main loop went on");
    m.write(LINE_GPA, new Uint8Array([1]));
    m.cpu.run(10_000);
    assert.equal(m.x(a1), 2);
  });

  it("only its own byte of the word counts", () => {
    const m = machine();
    m.write(LINE_GPA - 1, new Uint8Array([0xff]));
    m.write(LINE_GPA + 1, new Uint8Array([0xff, 0xff]));
    m.cpu.run(10_000);
    assert.equal(m.x(a1), 0);
  });

  it("makes wfi fall through and is visible to pendingInterrupts", () => {
    const m = new TestMachine();
    const a = new Asm(RAM_BASE);
    a.i(I.wfi(), I.addi(a2, 0, 7), I.ebreak());
    m.load(a);
    m.state[S.SIE] = SIP_SEIP; // enabled in sie but globally off: wfi still wakes
    m.state[S.UPCALL_LINE_MFN] = LINE_MFN;
    m.state[S.UPCALL_LINE_OFF] = LINE_GPA & 0xfff;
    assert.equal(m.cpu.run(100), ExitReason.WFI);
    m.write(LINE_GPA, new Uint8Array([1]));
    assert.equal(m.cpu.pendingInterrupts() & SIP_SEIP, SIP_SEIP);
    m.pc = RAM_BASE;
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a2), 7);
  });

  it("is off when UPCALL_LINE_OFF is -1", () => {
    const m = machine();
    m.write(LINE_GPA, new Uint8Array([1]));
    m.state[S.UPCALL_LINE_OFF] = -1;
    m.cpu.run(10_000);
    assert.equal(m.x(a1), 0);
  });
});
