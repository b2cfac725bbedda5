/**
 * CONSOLEIO_write served on the pCPU worker that took the ECALL: the bytes are copied out of the
 * guest's RAM here and posted to the core, and the vCPU goes on without an exit (Xen's
 * guest_console_write runs on the calling pCPU too). Only the plain case is served — a domain
 * with console rights, a length up to FAST_CONSOLE_MAX, every byte in ordinary RAM; anything else
 * exits to the core, whose answer (-EPERM, -EFAULT, …) is the same it always was.
 */
import type { MachineMemory } from "@xenon/hw";
import type { P2mReader } from "../p2m/p2m.js";
import { p2mIsRam } from "../p2m/types.js";
import { ConsoleIo, Hypercall } from "../public/xen.js";

/** Longest write served on the worker (bigger ones go to the core, which chunks them). */
export const FAST_CONSOLE_MAX = 4096;

const A0 = 10;
const A1 = 11;
const A2 = 12;
const A7 = 17;

export class FastConsole {
  private readonly allowed = new Set<number>();
  served = 0;

  constructor(
    private readonly memory: MachineMemory,
    private readonly post: (domid: number, bytes: Uint8Array) => void,
  ) {}

  setDomain(domid: number, console: boolean): void {
    if (console) this.allowed.add(domid);
    else this.allowed.delete(domid);
  }

  removeDomain(domid: number): void {
    this.allowed.delete(domid);
  }

  /** Serves the ECALL in `state` if it is a plain CONSOLEIO_write: a0 = 0 and true. */
  hypercall(domid: number, state: Int32Array, p2m: P2mReader): boolean {
    if (state[A7]! >>> 0 !== Hypercall.console_io || state[A0]! >>> 0 !== ConsoleIo.write) return false;
    if (!this.allowed.has(domid)) return false;
    const count = state[A1]! >>> 0;
    const buf = state[A2]! >>> 0;
    if (count > FAST_CONSOLE_MAX || buf + count > 2 ** 32) return false;
    const bytes = new Uint8Array(count);
    for (let done = 0; done < count; ) {
      const gpa = buf + done;
      const off = gpa % 4096;
      const n = Math.min(4096 - off, count - done);
      const raw = p2m.rawEntry(Math.floor(gpa / 4096));
      if (raw < 0) return false;
      const type = raw % 16;
      if (!p2mIsRam(type)) return false;
      const mfn = (raw - type) / 16;
      const c = this.memory.chunk(mfn);
      const base = this.memory.frameOffset(mfn) + off;
      bytes.set(c.u8.subarray(base, base + n), done);
      done += n;
    }
    if (count > 0) this.post(domid, bytes);
    this.served++;
    state[A0] = 0;
    return true;
  }
}
