/**
 * IOREQ service for a device model with no shared memory (a process-mode driver domain): the
 * core reads and answers the server's pages on its behalf, as hypercalls. Same states and order
 * as a device model working on the pages itself (hypervisor ABI.md §5.11): the buffered ring is
 * drained before the synchronous slots are taken, a slot goes READY -> INPROCESS when fetched and
 * INPROCESS -> IORESP_READY when answered.
 */
import type { Hypervisor } from "../../hypervisor.js";
import {
  BUF_IOREQ_BASE,
  IOREQ_BUFFER_SLOT_NUM,
  IOREQ_SIZE,
  IoreqState,
  XENMEM_resource_ioreq_server_frame_bufioreq,
  XENMEM_resource_ioreq_server_frame_ioreq,
} from "../../public/ioreq.js";

/**
 * What is waiting: posted writes (flat addr20, size, value) in ring order, then the requests taken
 * (flat vcpu, addr, size, write 0/1, value).
 */
export interface IoreqBatch {
  readonly posted: number[];
  readonly reqs: number[];
}

const STATE_SHIFT = 16;

function frameView(hv: Hypervisor, mfn: number): { dv: DataView; i32: Int32Array } {
  const chunk = hv.memory.chunk(mfn);
  const off = hv.memory.frameOffset(mfn);
  return { dv: new DataView(chunk.buffer, off, 4096), i32: new Int32Array(chunk.buffer, off, 1024) };
}

/** Drains the buffered ring and takes every READY slot of server `id` for `guest`, or -errno. */
export function ioreqFetch(hv: Hypervisor, c: number, guest: number, id: number): IoreqBatch | number {
  const s = hv.hypercalls;
  const ioreqMfn = s.acquireIoreqServerFrame(c, guest, id, XENMEM_resource_ioreq_server_frame_ioreq(0));
  if (ioreqMfn < 0) return ioreqMfn;
  const posted: number[] = [];
  const bufMfn = s.acquireIoreqServerFrame(c, guest, id, XENMEM_resource_ioreq_server_frame_bufioreq);
  if (bufMfn >= 0) {
    const { dv, i32 } = frameView(hv, bufMfn);
    for (;;) {
      const rp = Atomics.load(i32, 0) >>> 0;
      const wp = Atomics.load(i32, 1) >>> 0;
      if (rp === wp) break;
      const o = BUF_IOREQ_BASE + (rp % IOREQ_BUFFER_SLOT_NUM) * 8;
      const word = dv.getUint32(o, true);
      const data = dv.getUint32(o + 4, true);
      Atomics.store(i32, 0, (rp + 1) | 0);
      // dir 0 is a write; a posted read has nothing to answer and is dropped.
      if (((word >>> 9) & 1) === 0) posted.push(word >>> 12, 1 << ((word >>> 10) & 3), data);
    }
  }
  const reqs: number[] = [];
  const nr = s.dmopNrVcpus(c, guest);
  const { dv, i32 } = frameView(hv, ioreqMfn);
  for (let v = 0; v < nr && v < 4096 / IOREQ_SIZE; v++) {
    const w = (v * IOREQ_SIZE + 28) >>> 2;
    const word = Atomics.load(i32, w);
    if (((word >>> STATE_SHIFT) & 0xf) !== IoreqState.READY) continue;
    Atomics.store(i32, w, (word & ~(0xf << STATE_SHIFT)) | (IoreqState.INPROCESS << STATE_SHIFT));
    const b = v * IOREQ_SIZE;
    const write = ((word >>> 21) & 1) === 0 ? 1 : 0;
    reqs.push(v, dv.getUint32(b, true), dv.getUint32(b + 20, true), write, dv.getUint32(b + 8, true));
  }
  return { posted, reqs };
}

/**
 * Answers vCPU `vcpu`'s request (INPROCESS -> IORESP_READY, the value for a read) and sends on the
 * caller's `port` (its end of that vCPU's channel), as the device model would. 0 or -errno.
 */
export function ioreqComplete(
  hv: Hypervisor,
  c: number,
  guest: number,
  id: number,
  vcpu: number,
  value: number,
  port: number,
): number {
  const s = hv.hypercalls;
  const ioreqMfn = s.acquireIoreqServerFrame(c, guest, id, XENMEM_resource_ioreq_server_frame_ioreq(0));
  if (ioreqMfn < 0) return ioreqMfn;
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= 4096 / IOREQ_SIZE) return -22;
  const { dv, i32 } = frameView(hv, ioreqMfn);
  const w = (vcpu * IOREQ_SIZE + 28) >>> 2;
  const word = Atomics.load(i32, w);
  if (((word >>> STATE_SHIFT) & 0xf) !== IoreqState.INPROCESS) return -22;
  if (((word >>> 21) & 1) !== 0) {
    dv.setUint32(vcpu * IOREQ_SIZE + 8, value >>> 0, true);
    dv.setUint32(vcpu * IOREQ_SIZE + 12, 0, true);
  }
  Atomics.store(i32, w, (word & ~(0xf << STATE_SHIFT)) | (IoreqState.IORESP_READY << STATE_SHIFT));
  return s.evtchnSend(c, port);
}
