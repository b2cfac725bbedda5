import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createVcpuState } from "@xenon/hw";
import { consoleIo } from "../hypercall/guest_abi.js";
import { P2mReader } from "../p2m/p2m.js";
import { ConsoleIo, Hypercall } from "../public/xen.js";
import { makeDomain, makeHost, ramGpa } from "../test_support.js";
import { FAST_CONSOLE_MAX, FastConsole } from "./fast_console.js";

/** An ECALL state block for console_io(cmd, count, buf). */
function ecall(cmd: number, count: number, buf: number): Int32Array {
  const s = createVcpuState();
  s[17] = Hypercall.console_io;
  s[10] = cmd;
  s[11] = count | 0;
  s[12] = buf | 0;
  return s;
}

function rig(console = true) {
  const { hv } = makeHost();
  const d = makeDomain(hv, { flags: { isConsole: console } }, 4);
  const posted: Array<[number, string]> = [];
  const fast = new FastConsole(hv.memory, (domid, bytes) =>
    posted.push([domid, Buffer.from(bytes).toString("latin1")]),
  );
  fast.setDomain(d.domid, console);
  const p2m = new P2mReader(hv.memory, d.p2m.descriptor());
  return { hv, d, fast, posted, p2m };
}

describe("CONSOLEIO_write on the pCPU worker", () => {
  it("copies the bytes (across a page boundary), posts them and returns 0 without an exit", () => {
    const { d, fast, posted, p2m } = rig();
    const text = "hello from the worker, across a page\n";
    const at = ramGpa(1, 4096 - 10);
    assert.equal(d.guest.copyToGuest(at, Buffer.from(text, "latin1")), 0);
    const s = ecall(ConsoleIo.write, text.length, at);
    assert.equal(fast.hypercall(d.domid, s, p2m), true);
    assert.equal(s[10], 0);
    assert.deepEqual(posted, [[d.domid, text]]);
  });

  it("a zero-length write is served and posts nothing", () => {
    const { d, fast, posted, p2m } = rig();
    const s = ecall(ConsoleIo.write, 0, ramGpa(0));
    assert.equal(fast.hypercall(d.domid, s, p2m), true);
    assert.equal(s[10], 0);
    assert.deepEqual(posted, []);
  });

  it("leaves to the core, untouched, whatever it does not serve; the core's answer is the real one", () => {
    const { d, fast, posted, p2m } = rig();
    const cases: Array<[string, Int32Array, number]> = [
      ["console read", ecall(ConsoleIo.read, 16, ramGpa(0)), 0],
      ["unmapped buffer", ecall(ConsoleIo.write, 16, 0x1000), -14],
      ["runs off RAM", ecall(ConsoleIo.write, 64, ramGpa(3, 4090)), -14],
      ["too long for the worker", ecall(ConsoleIo.write, FAST_CONSOLE_MAX + 1, ramGpa(0)), 0],
      ["wraps the address space", ecall(ConsoleIo.write, 16, 0xfffffff8), -14],
    ];
    for (const [what, s, core] of cases) {
      const before = Int32Array.from(s);
      assert.equal(fast.hypercall(d.domid, s, p2m), false, what);
      assert.deepEqual(s, before, `${what}: state untouched`);
      if (s[10] === ConsoleIo.write) assert.equal(consoleIo(d, s[10]!, s[11]! >>> 0, s[12]! >>> 0), core, what);
    }
    assert.deepEqual(posted, []);
  });

  it("a domain without console rights goes to the core, which says -EPERM", () => {
    const { d, fast, posted, p2m } = rig(false);
    const s = ecall(ConsoleIo.write, 4, ramGpa(0));
    assert.equal(fast.hypercall(d.domid, s, p2m), false);
    assert.equal(consoleIo(d, ConsoleIo.write, 4, ramGpa(0)), -1);
    assert.deepEqual(posted, []);
  });

  it("other hypercalls are not its business", () => {
    const { d, fast, p2m } = rig();
    const s = ecall(ConsoleIo.write, 4, ramGpa(0));
    s[17] = Hypercall.sched_op;
    assert.equal(fast.hypercall(d.domid, s, p2m), false);
  });
});
