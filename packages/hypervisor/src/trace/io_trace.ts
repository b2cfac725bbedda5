/**
 * An opt-in timeline of the I/O path, across threads and processes: where a virtio request's
 * wall time goes (guest vCPU, the core's thread, the driver domain, each port round trip).
 *
 * Off unless XENON_IO_TRACE names a directory (or enableIoTrace() is called before the threads
 * start: they inherit the environment). Call sites guard with `if (ioTraceOn)` (a live binding),
 * so the hot path pays one branch when off. When on, each thread keeps its records in memory and
 * appends them to `<dir>/<pid>-<threadId>.trace` (lines "µs tag value") when 4096 are waiting,
 * every 20 ms on threads with an event loop (ioTraceFlush on those without one), and at exit.
 *
 * Times are absolute (performance.timeOrigin + now(), µs): comparable across threads and
 * processes of one host to a few µs. The analysis lives with the bench (tests/src/bench/blk.ts).
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isMainThread, threadId } from "node:worker_threads";

export let ioTraceOn = typeof process !== "undefined" && (process.env.XENON_IO_TRACE ?? "") !== "";

const CAP = 4096;
const times = new Float64Array(CAP);
const values = new Float64Array(CAP);
const tags: string[] = new Array<string>(CAP);
let count = 0;
let timer: ReturnType<typeof setInterval> | null = null;
const origin = performance.timeOrigin;

/** Turns tracing on for this thread and every thread or process started after (env). */
export function enableIoTrace(dir: string): void {
  process.env.XENON_IO_TRACE = dir;
  ioTraceOn = true;
}

/** Records `tag` (with an optional number) at the current time. Call only when ioTraceOn. */
export function ioTrace(tag: string, value = 0): void {
  if (timer === null) start();
  times[count] = (origin + performance.now()) * 1000;
  values[count] = value;
  tags[count] = tag;
  if (++count === CAP) ioTraceFlush();
}

/** Writes what this thread recorded so far (threads without an event loop call this when idle). */
export function ioTraceFlush(): void {
  if (count === 0) return;
  const dir = process.env.XENON_IO_TRACE;
  if (dir === undefined || dir === "") {
    count = 0;
    return;
  }
  let out = "";
  for (let i = 0; i < count; i++) out += `${times[i]!.toFixed(1)} ${tags[i]} ${values[i]}\n`;
  count = 0;
  try {
    const fd = openSync(join(dir, `${process.pid}-${isMainThread ? 0 : threadId}.trace`), "a");
    try {
      writeSync(fd, out);
    } finally {
      closeSync(fd);
    }
  } catch {
    // A trace must never take the host down: the directory went away (the bench ended), say.
  }
}

function start(): void {
  timer = setInterval(ioTraceFlush, 20);
  timer.unref();
  process.once("exit", ioTraceFlush);
}
