import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MachineMemory } from "../memory/machine_memory.js";
import { SLICE } from "./cpu.js";
import { Csr } from "./csr.js";
import { Cause, ExitReason, SIP_SEIP, SIP_SSIP, SIP_STIP, SSTATUS_SIE, SSTATUS_SPIE, SSTATUS_SPP } from "./exit.js";
import { FlatP2m } from "./flat_p2m.js";
import { P2M_R, P2M_W, P2M_X } from "./p2m.js";
import { Asm, C, I, Reg } from "./test_asm.js";
import { DATA_BASE, ManualTime, MFN_BASE, MMIO_BASE, RAM_BASE, RAM_PAGES, RWX, TestMachine } from "./test_machine.js";
import type { TimeSource } from "./time.js";
import { VcpuSlot } from "./vcpu_state.js";

const { a0, a1, a2, a3, a4, a5, ra, t0, t1 } = Reg;
const S = VcpuSlot;
const HANDLER = RAM_BASE + 0x800;
const INT = -0x8000_0000;

function machineWith(build: (a: Asm) => void, opts: { time?: TimeSource } = {}): TestMachine {
  const m = new TestMachine(opts.time ? { time: opts.time } : {});
  const a = new Asm(RAM_BASE);
  build(a);
  m.load(a);
  return m;
}

describe("CSRs", () => {
  it("csrrw / csrrs / csrrc and the immediate forms read the old value and write the new", () => {
    const m = machineWith((a) =>
      a
        .li(a0, 0x1234)
        .i(I.csrrw(a1, Csr.SSCRATCH, a0)) // a1 = 0, sscratch = 0x1234
        .li(a0, 0x0f00)
        .i(I.csrrs(a2, Csr.SSCRATCH, a0)) // a2 = 0x1234, sscratch = 0x1f34
        .li(a0, 0x0034)
        .i(I.csrrc(a3, Csr.SSCRATCH, a0)) // a3 = 0x1f34, sscratch = 0x1f00
        .i(I.csrrwi(a4, Csr.SSCRATCH, 17)) // a4 = 0x1f00, sscratch = 17
        .i(I.csrrsi(a5, Csr.SSCRATCH, 8)) // a5 = 17, sscratch = 25
        .i(I.csrrci(t0, Csr.SSCRATCH, 1)) // t0 = 25, sscratch = 24
        .i(I.csrrs(t1, Csr.SSCRATCH, 0)) // read only
        .i(I.ebreak()),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.deepEqual(
      [m.x(a1), m.x(a2), m.x(a3), m.x(a4), m.x(a5), m.x(t0), m.x(t1)],
      [0, 0x1234, 0x1f34, 0x1f00, 17, 25, 24],
    );
    assert.equal(m.state[S.SSCRATCH], 24);
  });

  it("csrrw with rd = rs1 swaps", () => {
    const m = machineWith((a) =>
      a
        .li(a0, 77)
        .i(I.csrrw(0, Csr.SSCRATCH, a0))
        .li(a0, 5)
        .i(I.csrrw(a0, Csr.SSCRATCH, a0), I.ebreak()),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 77);
    assert.equal(m.state[S.SSCRATCH], 5);
  });

  it("counters: instret/cycle count retired instructions, time comes from the TimeSource", () => {
    const time = new ManualTime();
    time.value = 0x1_2345_6789;
    const m = machineWith(
      (a) =>
        a
          .i(I.addi(0, 0, 0), I.addi(0, 0, 0))
          .i(I.csrrs(a0, Csr.INSTRET, 0), I.csrrs(a1, Csr.CYCLE, 0), I.csrrs(a2, Csr.INSTRETH, 0))
          .i(I.csrrs(a3, Csr.TIME, 0), I.csrrs(a4, Csr.TIMEH, 0), I.ebreak()),
      { time },
    );
    m.state[S.INSTRET_LO] = -3; // 0xfffffffd: the count crosses 2^32 during the run
    m.state[S.INSTRET_HI] = 7;
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), -1); // 0xfffffffd + 2
    assert.equal(m.x(a1), 0); // + 3
    assert.equal(m.x(a2), 8);
    assert.equal(m.x(a3), 0x2345_6789);
    assert.equal(m.x(a4), 1);
    assert.equal(m.state[S.INSTRET_LO], 5);
    assert.equal(m.state[S.INSTRET_HI], 8);
  });

  it("a TimeSource derived from instret sees the instructions retired so far in the slice", () => {
    let machine: TestMachine | undefined;
    const time: TimeSource = {
      now: () => machine!.state[S.INSTRET_HI]! * 2 ** 32 + (machine!.state[S.INSTRET_LO]! >>> 0),
    };
    const m = machineWith(
      (a) => a.i(I.addi(0, 0, 0), I.addi(0, 0, 0), I.csrrs(a0, Csr.TIME, 0), I.csrrs(a1, Csr.TIMEH, 0), I.ebreak()),
      { time },
    );
    machine = m;
    m.state[S.INSTRET_LO] = -1; // the count crosses 2^32 before the time read
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 1); // 0xffffffff + 2
    assert.equal(m.x(a1), 1);
    assert.equal(m.state[S.INSTRET_LO], 4);
    assert.equal(m.state[S.INSTRET_HI], 1);
  });

  it("writing a read-only counter is illegal; csrrs with x0 is a plain read", () => {
    for (const word of [I.csrrw(a0, Csr.CYCLE, a1), I.csrrsi(a0, Csr.TIME, 1), I.csrrc(a0, Csr.INSTRET, a1)]) {
      const m = machineWith((a) => a.i(word));
      assert.equal(m.cpu.run(10), ExitReason.FAULT);
      assert.equal(m.state[S.EXIT_CAUSE], Cause.ILLEGAL_INSTRUCTION);
      assert.equal(m.state[S.EXIT_TVAL], word | 0);
    }
    const m = machineWith((a) => a.i(I.csrrs(a0, Csr.CYCLE, 0), I.csrrci(a0, Csr.CYCLE, 0), I.ebreak()));
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
  });

  it("WARL masks: sstatus keeps SIE/SPIE/SPP, sie the S interrupt bits, stvec drops MODE, sepc bit 0; satp is 0", () => {
    const m = machineWith((a) =>
      a
        .li(a0, -1)
        .i(I.csrrw(0, Csr.SSTATUS, a0), I.csrrs(a1, Csr.SSTATUS, 0))
        .i(I.csrrw(0, Csr.SIE, a0), I.csrrs(a2, Csr.SIE, 0))
        .i(I.csrrw(0, Csr.STVEC, a0), I.csrrs(a3, Csr.STVEC, 0))
        .i(I.csrrw(0, Csr.SEPC, a0), I.csrrs(a4, Csr.SEPC, 0))
        .i(I.csrrw(0, Csr.SATP, a0), I.csrrs(a5, Csr.SATP, 0))
        .i(I.ebreak()),
    );
    // sie = all bits and SIE set but nothing pending, so no trap
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP);
    assert.equal(m.x(a2), SIP_SSIP | SIP_STIP | SIP_SEIP);
    assert.equal(m.x(a3), -4);
    assert.equal(m.x(a4), -2);
    assert.equal(m.x(a5), 0);
  });

  it("sip reads SEIP while the upcall line byte is set", () => {
    const m = machineWith((a) => a.i(I.csrrs(a1, Csr.SIP, 0), I.ebreak()));
    m.state[S.UPCALL_LINE_MFN] = MFN_BASE + (DATA_BASE - RAM_BASE) / 4096;
    m.state[S.UPCALL_LINE_OFF] = 3;
    m.write(DATA_BASE + 3, new Uint8Array([1]));
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.x(a1), SIP_SEIP);
  });

  it("the guest can write only SSIP in sip; host-set bits survive", () => {
    const m = machineWith((a) =>
      a
        .li(a0, -1)
        .i(
          I.csrrw(0, Csr.SIP, a0),
          I.csrrs(a1, Csr.SIP, 0),
          I.csrrc(0, Csr.SIP, a0),
          I.csrrs(a2, Csr.SIP, 0),
          I.ebreak(),
        ),
    );
    Atomics.or(m.state, S.SIP, SIP_STIP);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), SIP_STIP | SIP_SSIP);
    assert.equal(m.x(a2), SIP_STIP);
  });

  it("S-mode CSRs, sret and wfi are illegal from U-mode; counters are not", () => {
    for (const word of [I.csrrs(a0, Csr.SSTATUS, 0), I.csrrw(0, Csr.SSCRATCH, a0), I.sret(), I.wfi()]) {
      const m = machineWith((a) => a.i(word));
      m.state[S.PRIV] = 0;
      assert.equal(m.cpu.run(10), ExitReason.FAULT, `0x${word.toString(16)}`);
      assert.equal(m.state[S.EXIT_CAUSE], Cause.ILLEGAL_INSTRUCTION);
    }
    const m = machineWith((a) => a.i(I.csrrs(a0, Csr.INSTRET, 0), I.csrrs(a1, Csr.TIME, 0), I.ebreak()));
    m.state[S.PRIV] = 0;
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
  });
});

describe("ecall, ebreak, wfi", () => {
  it("ecall exits ECALL with pc past it, retired; the host's a0 is seen on resume", () => {
    const m = machineWith((a) => a.i(I.addi(Reg.a7, 0, 3), I.ecall(), I.addi(a1, a0, 1), I.ebreak()));
    assert.equal(m.cpu.run(100), ExitReason.ECALL);
    assert.equal(m.pc, RAM_BASE + 8);
    assert.equal(m.state[S.INSTRET_LO], 2);
    assert.equal(m.state[S.EXIT_REASON], ExitReason.ECALL);
    m.setX(a0, -38);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), -37);
    assert.equal(m.pc, RAM_BASE + 12);
    assert.equal(m.state[S.INSTRET_LO], 4);
  });

  it("wfi with nothing pending and enabled exits WFI past it", () => {
    const m = machineWith((a) => a.i(I.wfi(), I.ebreak()));
    Atomics.or(m.state, S.SIP, SIP_STIP); // pending but not enabled in sie
    assert.equal(m.cpu.run(100), ExitReason.WFI);
    assert.equal(m.pc, RAM_BASE + 4);
    assert.equal(m.state[S.INSTRET_LO], 1);
  });

  it("wfi is a nop when an interrupt is pending and enabled in sie, even with sstatus.SIE clear", () => {
    const m = machineWith((a) => a.i(I.wfi(), I.addi(a0, 0, 1), I.ebreak()));
    m.state[S.SIE] = SIP_STIP;
    Atomics.or(m.state, S.SIP, SIP_STIP);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 1);
  });
});

describe("traps and interrupts", () => {
  function withHandler(build: (a: Asm) => void): TestMachine {
    const m = machineWith((a) => {
      build(a);
      a.padTo(HANDLER).i(I.csrrs(a3, Csr.SCAUSE, 0), I.csrrs(a4, Csr.SEPC, 0), I.csrrs(a5, Csr.STVAL, 0), I.ebreak());
    });
    m.state[S.STVEC] = HANDLER;
    return m;
  }

  it("a pending external interrupt is taken at run() entry", () => {
    const m = withHandler((a) => a.i(I.addi(a0, 0, 1)));
    m.state[S.SIE] = SIP_SEIP;
    m.state[S.SSTATUS] = SSTATUS_SIE;
    Atomics.or(m.state, S.SIP, SIP_SEIP);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 0, "the interrupted instruction did not run");
    assert.equal(m.x(a3), INT | 9);
    assert.equal(m.x(a4) >>> 0, RAM_BASE);
    assert.equal(m.x(a5), 0);
    assert.equal(m.state[S.SSTATUS], SSTATUS_SPIE | SSTATUS_SPP);
    assert.equal(m.state[S.PRIV], 1);
  });

  it("priority is SEI, then SSI, then STI", () => {
    for (const [pending, cause] of [
      [SIP_SEIP | SIP_SSIP | SIP_STIP, 9],
      [SIP_SSIP | SIP_STIP, 1],
      [SIP_STIP, 5],
    ] as const) {
      const m = withHandler((a) => a.i(I.addi(a0, 0, 1)));
      m.state[S.SIE] = SIP_SEIP | SIP_SSIP | SIP_STIP;
      m.state[S.SSTATUS] = SSTATUS_SIE;
      Atomics.or(m.state, S.SIP, pending);
      assert.equal(m.cpu.run(100), ExitReason.EBREAK);
      assert.equal(m.x(a3), INT | cause);
    }
  });

  it("is masked by sstatus.SIE in S-mode but always enabled in U-mode", () => {
    const s = withHandler((a) => a.i(I.addi(a0, 0, 1), I.ebreak()));
    s.state[S.SIE] = SIP_STIP;
    Atomics.or(s.state, S.SIP, SIP_STIP);
    assert.equal(s.cpu.run(100), ExitReason.EBREAK);
    assert.equal(s.x(a0), 1);

    const u = withHandler((a) => a.i(I.addi(a0, 0, 1), I.ebreak()));
    u.state[S.SIE] = SIP_STIP;
    u.state[S.PRIV] = 0;
    Atomics.or(u.state, S.SIP, SIP_STIP);
    assert.equal(u.cpu.run(100), ExitReason.EBREAK);
    assert.equal(u.x(a0), 0);
    assert.equal(u.x(a3), INT | 5);
    assert.equal(u.state[S.SSTATUS]! & SSTATUS_SPP, 0, "SPP records U");
    assert.equal(u.state[S.PRIV], 1);
  });

  it("is taken right after a csr write that enables it (sepc = the next instruction)", () => {
    const m = withHandler((a) =>
      a
        .i(I.csrrsi(0, Csr.SIE, SIP_SSIP), I.csrrsi(0, Csr.SIP, SIP_SSIP), I.addi(a0, 0, 1))
        .i(I.csrrsi(0, Csr.SSTATUS, SSTATUS_SIE), I.addi(a1, 0, 1)),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 1);
    assert.equal(m.x(a1), 0);
    assert.equal(m.x(a3), INT | 1);
    assert.equal(m.x(a4) >>> 0, RAM_BASE + 16);
  });

  it("sret returns to sepc in SPP's mode, SIE = SPIE, SPIE = 1, SPP = 0", () => {
    const m = machineWith((a) =>
      a
        .li(a0, RAM_BASE + 0x100)
        .i(I.csrrw(0, Csr.SEPC, a0))
        .li(a1, SSTATUS_SPIE)
        .i(I.csrrs(0, Csr.SSTATUS, a1))
        .i(I.sret())
        .padTo(RAM_BASE + 0x100)
        .i(I.csrrs(a1, Csr.INSTRET, 0), I.ebreak()),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.state[S.PRIV], 0);
    assert.equal(m.state[S.SSTATUS], SSTATUS_SIE | SSTATUS_SPIE);
    assert.equal(m.pc, RAM_BASE + 0x104);
  });

  it("an interrupt pending in U-mode is taken right after sret", () => {
    const m = withHandler((a) =>
      a
        .li(a0, RAM_BASE + 0x100)
        .i(I.csrrw(0, Csr.SEPC, a0), I.sret())
        .padTo(RAM_BASE + 0x100)
        .i(I.addi(a1, 0, 1)),
    );
    m.state[S.SIE] = SIP_SEIP;
    Atomics.or(m.state, S.SIP, SIP_SEIP); // sstatus.SIE = 0: masked in S, enabled once in U
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), 0);
    assert.equal(m.x(a3), INT | 9);
    assert.equal(m.x(a4) >>> 0, RAM_BASE + 0x100);
    assert.equal(m.state[S.SSTATUS]! & SSTATUS_SPP, 0);
  });

  it("injectTrap reflects a fault into the guest's vector", () => {
    const m = withHandler((a) => a.li(a1, 0x4000_0000).i(I.lw(a0, a1, 0)));
    m.p2m.map(0x4000_0000 >>> 12, MFN_BASE + RAM_PAGES, P2M_X); // exists, but not readable
    assert.equal(m.cpu.run(100), ExitReason.FAULT);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.LOAD_ACCESS);
    const faultPc = m.pc;
    m.cpu.injectTrap(m.state[S.EXIT_CAUSE]!, m.state[S.EXIT_TVAL]!);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a3), Cause.LOAD_ACCESS);
    assert.equal(m.x(a4) >>> 0, faultPc);
    assert.equal(m.x(a5), 0x4000_0000);
  });

  it("injectTrap with bit 31 delivers an interrupt cause", () => {
    const m = withHandler((a) => a.i(I.addi(a0, 0, 1)));
    m.cpu.injectTrap(INT | 9, 0);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a3), INT | 9);
  });
});

describe("P2M and the soft TLB", () => {
  it("fetch from an unmapped address faults FETCH_ACCESS", () => {
    const m = machineWith((a) => a.li(a0, MMIO_BASE).i(I.jalr(0, a0, 0)));
    assert.equal(m.cpu.run(100), ExitReason.FAULT);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.FETCH_ACCESS);
    assert.equal(m.state[S.EXIT_TVAL], MMIO_BASE);
    assert.equal(m.pc, MMIO_BASE);
    assert.equal(m.state[S.INSTRET_LO], 2);
  });

  it("fetch from RAM without X faults FETCH_ACCESS", () => {
    const m = machineWith((a) => a.li(a0, DATA_BASE).i(I.jalr(0, a0, 0)));
    m.p2m.map(DATA_BASE >>> 12, MFN_BASE + (DATA_BASE - RAM_BASE) / 4096, P2M_R | P2M_W);
    assert.equal(m.cpu.run(100), ExitReason.FAULT);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.FETCH_ACCESS);
    assert.equal(m.state[S.EXIT_TVAL]! >>> 0, DATA_BASE);
  });

  it("a write to a read-only page faults STORE_ACCESS and leaves memory alone", () => {
    const m = machineWith((a) => a.li(a5, DATA_BASE).i(I.lw(a1, a5, 0), I.sw(a0, a5, 0)));
    m.writeWord(DATA_BASE, 42);
    m.setX(a0, 7);
    m.p2m.map(DATA_BASE >>> 12, MFN_BASE + (DATA_BASE - RAM_BASE) / 4096, P2M_R);
    assert.equal(m.cpu.run(100), ExitReason.FAULT);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.STORE_ACCESS);
    assert.equal(m.state[S.EXIT_TVAL]! >>> 0, DATA_BASE);
    assert.equal(m.pc, RAM_BASE + 8);
    assert.equal(m.x(a1), 42);
    assert.equal(m.readWord(DATA_BASE), 42);
  });

  it("log-dirty: the first write to a page calls markDirty once, later writes go straight through", () => {
    const m = machineWith((a) =>
      a
        .li(a5, DATA_BASE)
        .li(a4, DATA_BASE + 0x1000)
        .li(t0, 100)
        .label("l")
        .i(I.sw(t0, a5, 0), I.sb(t0, a5, 5), I.sw(t0, a4, 0), I.addi(t0, t0, -1))
        .bne(t0, 0, "l")
        .i(I.ebreak()),
    );
    m.p2m.setLogDirty(true);
    assert.equal(m.cpu.run(10_000), ExitReason.EBREAK);
    assert.equal(m.p2m.markDirtyCalls, 2);
    assert.deepEqual(m.p2m.takeDirty(), [DATA_BASE >>> 12, (DATA_BASE >>> 12) + 1]);
    assert.equal(m.readWord(DATA_BASE), 1);
    assert.equal(m.readWord(DATA_BASE + 0x1000), 1);
    // A new round (generation bump) reports the page again.
    m.p2m.setLogDirty(true);
    m.pc = RAM_BASE;
    assert.equal(m.cpu.run(10_000), ExitReason.EBREAK);
    assert.equal(m.p2m.markDirtyCalls, 4);
  });

  it("a generation bump between runs revokes a cached mapping", () => {
    const m = machineWith((a) => a.li(a5, DATA_BASE).i(I.lw(a0, a5, 0), I.ebreak(), I.lw(a1, a5, 0), I.ebreak()));
    m.writeWord(DATA_BASE, 5);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), 5);
    m.p2m.unmap(DATA_BASE >>> 12);
    m.pc = m.pc + 4;
    assert.equal(m.cpu.run(100), ExitReason.MMIO);
    assert.equal(m.state[S.TLB_GEN_SEEN], Atomics.load(m.p2m.generation, 0));
  });

  it("a generation bump during a run takes effect within one slice", () => {
    // The TimeSource unmaps the data page when the guest reads `time`: the bump happens mid-run.
    let machine: TestMachine | undefined;
    const time: TimeSource = {
      now: () => {
        machine!.p2m.unmap(DATA_BASE >>> 12);
        return 0;
      },
    };
    const m = machineWith(
      (a) =>
        a
          .li(a5, DATA_BASE)
          .i(I.lw(a0, a5, 0), I.csrrs(0, Csr.TIME, 0))
          .label("l")
          .i(I.lw(a0, a5, 0), I.addi(a1, a1, 1))
          .jal(0, "l"),
      { time },
    );
    machine = m;
    assert.equal(m.cpu.run(100_000), ExitReason.MMIO);
    assert.equal(m.state[S.MMIO_ADDR]! >>> 0, DATA_BASE);
    assert.ok(m.x(a1) > 0 && m.x(a1) * 3 < SLICE + 3, `loop ran ${m.x(a1)} times before the flush`);
  });

  it("flushTlb() drops entries (a remap without a generation bump needs it)", () => {
    const p2m = new FlatP2m();
    p2m.mapRange(RAM_BASE >>> 12, MFN_BASE, RAM_PAGES, RWX);
    const m = new TestMachine({ p2m });
    m.load(new Asm(RAM_BASE).li(a5, DATA_BASE).i(I.lw(a0, a5, 0), I.ebreak(), I.lw(a1, a5, 0), I.ebreak()));
    m.writeWord(DATA_BASE, 1);
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    m.p2m.map(DATA_BASE >>> 12, MFN_BASE + 1, RWX); // bumps; flush too to show the API
    m.cpu.flushTlb();
    m.pc = m.pc + 4;
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), m.readWord(RAM_BASE + 0x1000));
  });

  it("a 32-bit instruction straddling a page boundary is fetched from both pages", () => {
    const m = machineWith((a) =>
      a
        .padTo(RAM_BASE + 0xffe)
        .i(I.addi(a0, a0, 0x123))
        .c(C.addi(a0, 1))
        .i(I.ebreak()),
    );
    // the second page lives in a distant machine frame
    m.p2m.map((RAM_BASE >>> 12) + 1, MFN_BASE + 40, RWX);
    const w = I.addi(a0, a0, 0x123);
    m.write(RAM_BASE + 0xffe, new Uint8Array([w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff, w >>> 24]));
    m.write(RAM_BASE + 0x1002, new Asm(0).c(C.addi(a0, 1)).i(I.ebreak()).bytes());
    assert.equal(m.cpu.run(10_000), ExitReason.EBREAK);
    assert.equal(m.x(a0), 0x124);
    assert.equal(m.pc, RAM_BASE + 0x1004);
  });

  it("a straddling instruction whose second half is not executable faults with tval = the second page", () => {
    const m = machineWith((a) => a.padTo(RAM_BASE + 0xffe).i(I.addi(a0, a0, 1)));
    m.p2m.unmap((RAM_BASE >>> 12) + 1);
    assert.equal(m.cpu.run(10_000), ExitReason.FAULT);
    assert.equal(m.state[S.EXIT_CAUSE], Cause.FETCH_ACCESS);
    assert.equal(m.state[S.EXIT_TVAL]! >>> 0, RAM_BASE + 0x1000);
    assert.equal(m.pc, RAM_BASE + 0xffe);
  });

  it("a store to already-decoded code is seen without fence.i (same hart): sw, sh, amoswap", () => {
    // The body's first instruction is patched after each pass: a word store, a halfword store to
    // its upper half (the slot before must be invalidated too), then an AMO. Data is written to
    // the same page on every pass.
    const m = machineWith((a) =>
      a
        .li(a5, RAM_BASE + 0x100)
        .li(a0, I.addi(a1, a1, 10))
        .li(a2, I.addi(a1, a1, 100) >>> 16)
        .li(a3, I.addi(a1, a1, 1000))
        .li(t0, 4)
        .jal(0, "body")
        .label("out")
        .i(I.ebreak())
        .padTo(RAM_BASE + 0x100)
        .label("body")
        .i(I.addi(a1, a1, 1)) // patched
        .i(I.sw(t0, a5, 0x400))
        .i(I.addi(a4, t0, -4))
        .beq(a4, 0, "p1")
        .i(I.addi(a4, t0, -3))
        .beq(a4, 0, "p2")
        .i(I.addi(a4, t0, -2))
        .beq(a4, 0, "p3")
        .jal(0, "next")
        .label("p1")
        .i(I.sw(a0, a5, 0))
        .jal(0, "next")
        .label("p2")
        .i(I.sh(a2, a5, 2))
        .jal(0, "next")
        .label("p3")
        .i(I.amoswap_w(0, a3, a5))
        .label("next")
        .i(I.addi(t0, t0, -1))
        .bne(t0, 0, "body")
        .jal(0, "out"),
    );
    assert.equal(m.cpu.run(10_000), ExitReason.EBREAK);
    assert.equal(m.x(a1), 1 + 10 + 100 + 1000);
    assert.equal(m.readWord(RAM_BASE + 0x500), 1);
  });

  it("a store through another gfn mapping the same frame is seen by decoded code", () => {
    // The body lives on the second RAM page; ALIAS maps that page's frame a second time. The first
    // store through ALIAS happens before the body is ever decoded (so its write entry must be
    // converted when the frame gets decoded); the second store patches the body.
    const BODY = RAM_BASE + 0x1000;
    const ALIAS = RAM_BASE + RAM_PAGES * 4096;
    const m = machineWith((a) =>
      a
        .li(a5, ALIAS)
        .li(a0, I.addi(a1, a1, 10))
        .i(I.sw(0, a5, 0x200))
        .li(t1, BODY)
        .i(I.jalr(ra, t1, 0))
        .i(I.sw(a0, a5, 0))
        .i(I.jalr(ra, t1, 0))
        .i(I.ebreak())
        .padTo(BODY)
        .i(I.addi(a1, a1, 1), I.jalr(0, ra, 0)),
    );
    m.p2m.map(ALIAS >>> 12, MFN_BASE + 1, RWX);
    assert.equal(m.cpu.run(1000), ExitReason.EBREAK);
    assert.equal(m.x(a1), 11);
  });

  it("runs through more code frames than the decode cache keeps (it is dropped and refilled)", () => {
    const PAGES = 2200;
    const m = new TestMachine({ memory: new MachineMemory({ bytes: 32 << 20 }), ramPages: PAGES + 1 });
    // Each page: addi a0, a0, 1; jal to the next page. The last page: ebreak.
    const page = new Asm(0).i(I.addi(a0, a0, 1), I.jal(0, 4096 - 4)).bytes();
    for (let k = 0; k < PAGES; k++) m.write(RAM_BASE + k * 4096, page);
    m.write(RAM_BASE + PAGES * 4096, new Asm(0).i(I.ebreak()).bytes());
    for (let round = 1; round <= 2; round++) {
      m.pc = RAM_BASE;
      assert.equal(m.cpu.run(100_000), ExitReason.EBREAK);
      assert.equal(m.x(a0), round * PAGES);
    }
  });

  it("fence.i after a store makes the new instruction execute", () => {
    const m = machineWith((a) =>
      a
        .li(a5, RAM_BASE + 0x100)
        .li(a0, I.addi(a1, 0, 42))
        .i(I.sw(a0, a5, 0), I.fence_i(), I.fence())
        .padTo(RAM_BASE + 0x100)
        .i(I.addi(a1, 0, 1), I.ebreak()),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a1), 42);
  });
});

describe("run(): budget and PREEMPT", () => {
  const loop = (a: Asm) =>
    a
      .label("l")
      .i(I.addi(a0, a0, 1))
      .c(C.addi(a1, 1))
      .jal(0, "l");

  for (const n of [0, 1, 2, 7, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 5, 100_000]) {
    it(`run(${n}) retires exactly ${n} instructions`, () => {
      const m = machineWith(loop);
      assert.equal(m.cpu.run(n), ExitReason.BUDGET);
      assert.equal(m.state[S.INSTRET_LO], n);
      assert.equal(m.x(a0) + m.x(a1) + Math.floor(n / 3), n);
      // Split runs end in the same state as one run.
      const twin = machineWith(loop);
      const k = Math.floor(n / 3);
      twin.cpu.run(k);
      twin.cpu.run(n - k);
      assert.equal(twin.pc, m.pc);
      assert.equal(twin.x(a0), m.x(a0));
    });
  }

  it("PREEMPT set before run() exits at once and is left set", () => {
    const m = machineWith(loop);
    Atomics.store(m.state, S.PREEMPT, 1);
    assert.equal(m.cpu.run(1000), ExitReason.PREEMPT);
    assert.equal(m.state[S.INSTRET_LO], 0);
    assert.equal(Atomics.load(m.state, S.PREEMPT), 1);
    assert.equal(m.state[S.EXIT_REASON], ExitReason.PREEMPT);
  });

  it("PREEMPT set during a run stops it at the next poll", () => {
    let machine: TestMachine | undefined;
    const time: TimeSource = {
      now: () => {
        Atomics.store(machine!.state, S.PREEMPT, 1);
        return 0;
      },
    };
    const m = machineWith((a) => a.i(I.csrrs(0, Csr.TIME, 0)).pipe(loop), { time });
    machine = m;
    assert.equal(m.cpu.run(1_000_000), ExitReason.PREEMPT);
    assert.equal(m.state[S.INSTRET_LO], SLICE);
    Atomics.store(m.state, S.PREEMPT, 0);
    assert.equal(m.cpu.run(10), ExitReason.BUDGET);
  });

  it("a vCPU resumes on a new Cpu instance from the same state and memory", () => {
    const m = machineWith((a) =>
      a
        .li(t0, 1000)
        .label("l")
        .i(I.addi(a0, a0, 2), I.addi(t0, t0, -1))
        .bne(t0, 0, "l")
        .i(I.ebreak()),
    );
    assert.equal(m.cpu.run(777), ExitReason.BUDGET);
    const resumed = new TestMachine({ memory: m.memory, p2m: m.p2m, state: m.state });
    assert.equal(resumed.cpu.run(1_000_000), ExitReason.EBREAK);
    assert.equal(resumed.x(a0), 2000);
  });
});
