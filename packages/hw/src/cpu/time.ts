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

/** Wall-clock time from the host's monotonic clock. */
export const hostTime: TimeSource = {
  now: () => Math.floor(performance.now() * (TIMEBASE_HZ / 1000)),
};
