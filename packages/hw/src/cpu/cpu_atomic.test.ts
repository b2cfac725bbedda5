import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { Cause, ExitReason } from "./exit.js";
import type { AmoWorkerData, AmoWorkerResult } from "./fixtures/amo_worker.js";
import { P2M_R } from "./p2m.js";
import { Asm, I, Reg } from "./test_asm.js";
import { DATA_BASE, MFN_BASE, MMIO_BASE, RAM_BASE, TestMachine } from "./test_machine.js";
import { createVcpuState, VcpuSlot } from "./vcpu_state.js";

const { a0, a1, a2, a3, a5, t0 } = Reg;
const S = VcpuSlot;

function machineWith(build: (a: Asm) => void, mem: number): TestMachine {
  const m = new TestMachine();
  const a = new Asm(RAM_BASE);
  build(a);
  a.i(I.ebreak());
  m.load(a);
  m.writeWord(DATA_BASE, mem);
  m.setX(a5, DATA_BASE);
  return m;
}

describe("A extension (one hart)", () => {
  const cases: Array<[string, (rd: number, rs2: number, rs1: number) => number, number, number, number]> = [
    // name, encoder, memory before, rs2, memory after (rd gets the old value)
    ["amoswap.w", I.amoswap_w, 5, 9, 9],
    ["amoadd.w", I.amoadd_w, 0x7fffffff, 1, -0x80000000],
    ["amoxor.w", I.amoxor_w, 0xff, 0x0f, 0xf0],
    ["amoand.w", I.amoand_w, 0xff, 0x0f, 0x0f],
    ["amoor.w", I.amoor_w, 0xf0, 0x0f, 0xff],
    ["amomin.w", I.amomin_w, -1, 1, -1],
    ["amomax.w", I.amomax_w, -1, 1, 1],
    ["amominu.w", I.amominu_w, -1, 1, 1],
    ["amomaxu.w", I.amomaxu_w, -1, 1, -1],
    ["amomin.w (smaller operand)", I.amomin_w, 3, -7, -7],
    ["amomaxu.w (larger operand)", I.amomaxu_w, 3, -7, -7],
  ];
  for (const [name, enc, before, operand, after] of cases) {
    it(`${name}`, () => {
      const m = machineWith((a) => a.i(enc(a0, a1, a5)), before);
      m.setX(a1, operand);
      assert.equal(m.cpu.run(10), ExitReason.EBREAK);
      assert.equal(m.readWord(DATA_BASE), after | 0);
      assert.equal(m.x(a0), before | 0);
    });
  }

  it("an AMO with rd = rs2 uses the old rs2 as the operand", () => {
    const m = machineWith((a) => a.i(I.amoadd_w(a1, a1, a5)), 10);
    m.setX(a1, 5);
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.readWord(DATA_BASE), 15);
    assert.equal(m.x(a1), 10);
  });

  it("lr.w / sc.w succeeds when nothing intervened, and any sc clears the reservation", () => {
    const m = machineWith(
      (a) => a.i(I.lr_w(a0, a5), I.addi(a0, a0, 1), I.sc_w(a2, a0, a5), I.addi(a0, a0, 1), I.sc_w(a3, a0, a5)),
      41,
    );
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.x(a2), 0);
    assert.equal(m.x(a3), 1);
    assert.equal(m.readWord(DATA_BASE), 42);
    assert.equal(m.state[S.RESERVATION_VALID], 0);
  });

  it("sc.w without a reservation, or to another address, fails and stores nothing", () => {
    const m = machineWith((a) => a.i(I.sc_w(a2, a1, a5), I.lr_w(a0, a5), I.addi(a3, a5, 4), I.sc_w(a3, a1, a3)), 7);
    m.setX(a1, 99);
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.x(a2), 1);
    assert.equal(m.x(a3), 1);
    assert.equal(m.readWord(DATA_BASE), 7);
    assert.equal(m.readWord(DATA_BASE + 4), 0);
  });

  it("sc.w fails when another agent changed the word after lr.w", () => {
    const m = machineWith((a) => a.i(I.lr_w(a0, a5), I.ecall(), I.sc_w(a2, a1, a5)), 7);
    m.setX(a1, 99);
    assert.equal(m.cpu.run(10), ExitReason.ECALL);
    m.writeWord(DATA_BASE, 8); // "another hart"
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.x(a2), 1);
    assert.equal(m.readWord(DATA_BASE), 8);
  });

  it("a trap clears the reservation", () => {
    const m = machineWith((a) => a.i(I.lr_w(a0, a5), I.ecall(), I.sc_w(a2, a1, a5)), 7);
    assert.equal(m.cpu.run(10), ExitReason.ECALL);
    m.state[S.STVEC] = m.pc; // the handler is the sc itself
    m.cpu.injectTrap(Cause.ECALL_S, 0);
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.x(a2), 1);
  });

  it("atomics to non-RAM fault (no atomics over MMIO): AMO/SC as STORE_ACCESS, LR as LOAD_ACCESS", () => {
    for (const [word, cause] of [
      [I.amoadd_w(a0, a1, a3), Cause.STORE_ACCESS],
      [I.sc_w(a0, a1, a3), Cause.STORE_ACCESS],
      [I.lr_w(a0, a3), Cause.LOAD_ACCESS],
    ] as const) {
      const m = machineWith((a) => a.i(word), 0);
      m.setX(a3, MMIO_BASE);
      assert.equal(m.cpu.run(10), ExitReason.FAULT);
      assert.equal(m.state[S.EXIT_CAUSE], cause);
      assert.equal(m.state[S.EXIT_TVAL], MMIO_BASE);
      assert.equal(m.pc, RAM_BASE);
    }
  });

  it("an AMO to a read-only page faults STORE_ACCESS; lr.w from it works", () => {
    const m = machineWith((a) => a.i(I.lr_w(a0, a5), I.amoor_w(a2, a1, a5)), 3);
    m.p2m.map(DATA_BASE >>> 12, MFN_BASE + (DATA_BASE - RAM_BASE) / 4096, P2M_R);
    assert.equal(m.cpu.run(10), ExitReason.FAULT);
    assert.equal(m.x(a0), 3);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.STORE_ACCESS);
  });

  it("reserved AMO encodings are illegal", () => {
    for (const word of [
      I.lr_w(a0, a5) | (1 << 20),
      I.amoadd_w(a0, a1, a5) | (0x05 << 27),
      I.amoadd_w(a0, a1, a5) ^ (1 << 13),
    ]) {
      const m = machineWith((a) => a.i(word >>> 0), 0);
      assert.equal(m.cpu.run(10), ExitReason.FAULT);
      assert.equal(m.state[S.EXIT_CAUSE], Cause.ILLEGAL_INSTRUCTION);
    }
  });
});

describe("A extension across threads", () => {
  const N = 100_000;
  const COUNT_AMO = DATA_BASE;
  const COUNT_LRSC = DATA_BASE + 64;
  const MAX = DATA_BASE + 128;

  it("two vCPUs on two workers: amoadd.w, lr.w/sc.w and amomax.w loops on shared words are exact", async (t) => {
    const m = new TestMachine();
    m.load(
      new Asm(RAM_BASE)
        // amoadd loop
        .li(a5, COUNT_AMO)
        .li(a1, 1)
        .li(t0, N)
        .label("amo")
        .i(I.amoadd_w(0, a1, a5), I.addi(t0, t0, -1))
        .bne(t0, 0, "amo")
        // lr/sc increment loop; a3 counts sc failures
        .li(a5, COUNT_LRSC)
        .li(t0, N)
        .label("lr")
        .i(I.lr_w(a0, a5), I.addi(a0, a0, 1), I.sc_w(a2, a0, a5))
        .beq(a2, 0, "ok")
        .i(I.addi(a3, a3, 1))
        .jal(0, "lr")
        .label("ok")
        .i(I.addi(t0, t0, -1))
        .bne(t0, 0, "lr")
        // amomax with 1..N
        .li(a5, MAX)
        .li(t0, 0)
        .li(a1, N)
        .label("max")
        .i(I.addi(t0, t0, 1), I.amomax_w(0, t0, a5))
        .bne(t0, a1, "max")
        .i(I.ebreak()),
    );
    const barrier = new SharedArrayBuffer(4);
    const states = [createVcpuState(), createVcpuState()];
    const workers = states.map((st) => {
      st[S.PC] = RAM_BASE | 0;
      const data: AmoWorkerData = {
        memBytes: m.memory.totalFrames * 4096,
        chunks: m.memory.exportChunks(),
        p2mEntries: m.p2m.exportEntries(),
        state: st.buffer as SharedArrayBuffer,
        barrier,
        parties: 2,
      };
      return new Worker(new URL("./fixtures/amo_worker.js", import.meta.url), { workerData: data });
    });
    const results = (await Promise.all(workers.map((w) => once(w, "message")))).map((r) => r[0] as AmoWorkerResult);
    await Promise.all(workers.map((w) => w.terminate()));
    for (const r of results) assert.equal(r.exit, ExitReason.EBREAK);
    assert.equal(m.readWord(COUNT_AMO), 2 * N);
    assert.equal(m.readWord(COUNT_LRSC), 2 * N);
    assert.equal(m.readWord(MAX), N);
    const failures = states.map((st) => st[a3]!);
    // Not asserted (timing-dependent), but shows the test exercised contention.
    t.diagnostic(`sc.w failures per vCPU: ${failures.join(", ")}`);
  });
});
