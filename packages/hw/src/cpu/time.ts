/**
 * Where the vCPU's `time` counter comes from. The caller supplies it: wall-clock ticks for normal
 * runs, or a function of retired instructions in deterministic mode so a run is reproducible.
 */
export interface TimeSource {
  /** Current time in ticks of TIMEBASE_HZ (an integer, exact as a JS number). */
  now(): number;
}

/** Ticks per second of the time counter (10 MHz, as QEMU's virt machine). */
export const TIMEBASE_HZ = 10_000_000;

/** Wall-clock time from this thread's monotonic clock (single-threaded users). */
export const hostTime: TimeSource = {
  now: () => Math.floor(performance.now() * (TIMEBASE_HZ / 1000)),
};

/**
 * Wall-clock time since `originMs` on the shared time line (performance.timeOrigin + now()).
 * Every thread's performance.now() counts from its own start, so threads that must agree on one
 * clock (vCPUs on several pCPU workers and the core that sets their timers) all count from the
 * same origin, handed out by the core.
 */
export function hostTimeSince(originMs: number): TimeSource {
  const base = performance.timeOrigin - originMs;
  return { now: () => Math.floor((base + performance.now()) * (TIMEBASE_HZ / 1000)) };
}
