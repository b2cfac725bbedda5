/**
 * The virtio-mmio version 2 register model (VirtIO 1.2 §4.2) for one device: feature negotiation
 * (VERSION_1 always, ACCESS_PLATFORM when the bus is restricted, EVENT_IDX, INDIRECT_DESC), the
 * status state machine, queue configuration, notifications, interrupt status, config space with
 * its generation counter, and reset.
 *
 * read()/write() are synchronous: they answer an ioreq. Queue work they start (activation,
 * kicks) runs asynchronously and is serialised per queue. A broken virtqueue rule sets
 * DEVICE_NEEDS_RESET, raises the config interrupt and logs "virtio-<dev> d<guest>: <rule>: ...";
 * the device then does nothing until the driver resets it. A config interrupt is raised again
 * until the driver acknowledges it (the line is a level; the event channel carrying it an edge).
 *
 * Status writes follow Firecracker's strict machine: 0 resets; ACKNOWLEDGE, DRIVER, FEATURES_OK
 * and DRIVER_OK may only be added in that order; FAILED may always be set; others are ignored.
 */
import { ioTrace, ioTraceOn } from "@xenon/hypervisor";
import type { DeviceBus } from "./bus.js";
import { Feature, InterruptBit, MMIO_MAGIC, MMIO_VERSION, Mmio, Status } from "./constants.js";
import { QUEUE_WAIT, type QueueIo, type VirtioDevice } from "./device.js";
import type { MemoryRegion } from "./guest_memory.js";
import { GuestGoneError, QueueError } from "./queue_error.js";
import { SplitQueue, type SplitQueueState } from "./split_queue.js";

/** A config interrupt not acknowledged is raised again after this, then twice as late, up to the max. */
const CONFIG_REPEAT_FIRST_MS = 10;
const CONFIG_REPEAT_MAX_MS = 1000;

/** Version of VirtioMmioState; setState refuses any other. */
export const VIRTIO_MMIO_STATE_VERSION = 1;

/**
 * A device's transport as it moves with its guest (migration, a backend handing over): the
 * register file, every queue's configuration and ring positions, and the device model's own
 * state. Plain data (msgpackr-encodable). Taken only while idle, with no chain in flight.
 */
export interface VirtioMmioState {
  readonly version: typeof VIRTIO_MMIO_STATE_VERSION;
  readonly deviceId: number;
  readonly status: number;
  readonly deviceFeaturesSel: number;
  readonly driverFeaturesSel: number;
  readonly driverFeatures: readonly [number, number];
  readonly queueSel: number;
  readonly interruptStatus: number;
  readonly configGeneration: number;
  readonly queues: readonly SplitQueueState[];
  readonly device?: unknown;
}

const bit = (n: number): [number, number] => (n < 32 ? [(1 << n) >>> 0, 0] : [0, (1 << (n - 32)) >>> 0]);

interface QueueRun {
  busy: boolean;
  again: boolean;
}

export class VirtioMmioTransport {
  readonly queues: SplitQueue[];
  private readonly runs: QueueRun[];
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private readonly driverFeatures = [0, 0];
  private readonly offered: [number, number];
  private queueSel = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  /** Ring activation started at DRIVER_OK; kicks wait for it. */
  private activation: Promise<boolean> | null = null;
  /** Bumped by every reset: work started before it must not touch the device after it. */
  private epoch = 0;
  private readonly io: QueueIo;
  /** How many times a rule was broken (for tests and stats). */
  faults = 0;

  constructor(
    readonly device: VirtioDevice,
    private readonly bus: DeviceBus,
  ) {
    this.queues = device.queueMaxSizes.map((max, i) => new SplitQueue(i, max));
    this.runs = this.queues.map(() => ({ busy: false, again: false }));
    const f: [number, number] = [device.features[0] >>> 0, device.features[1] >>> 0];
    for (const b of [Feature.VERSION_1, Feature.EVENT_IDX, Feature.INDIRECT_DESC]) {
      const [lo, hi] = bit(b);
      f[0] = (f[0] | lo) >>> 0;
      f[1] = (f[1] | hi) >>> 0;
    }
    if (bus.restricted) f[1] = (f[1] | bit(Feature.ACCESS_PLATFORM)[1]) >>> 0;
    this.offered = f;
    device.bindWake?.((q) => this.kick(q));
    device.bindConfigChanged?.(() => this.configChanged());
    const mem = bus.memory;
    this.io = {
      guest: bus.guest,
      log: (line) => bus.log(line),
      mapBuffer: async (q, i, len): Promise<MemoryRegion> => {
        const c = q.chain;
        const r = await mem.map(c.hi[i]!, c.lo[i]!, Math.min(len ?? c.len[i]!, c.len[i]!), c.isWritable(i));
        if (typeof r === "string")
          throw new QueueError("buffer-unreachable", `queue ${q.index}: buffer ${i} of chain ${c.head}: ${r}`);
        return r;
      },
      release: async (r) => {
        const p = mem.release(r);
        if (p !== undefined) await p;
      },
      mapChain: async (q): Promise<MemoryRegion[]> => {
        const c = q.chain;
        if (mem.mapMany === undefined || c.count < 2) {
          // Every buffer at once: the map calls share their round trips.
          const got = await Promise.allSettled(Array.from({ length: c.count }, (_, i) => this.io.mapBuffer(q, i)));
          const out: MemoryRegion[] = [];
          for (const g of got) if (g.status === "fulfilled") out.push(g.value);
          const failed = got.find((g) => g.status === "rejected");
          if (failed !== undefined) {
            await this.io.releaseAll(out);
            throw failed.reason;
          }
          return out;
        }
        const ranges = [];
        for (let i = 0; i < c.count; i++)
          ranges.push({ hi: c.hi[i]!, lo: c.lo[i]!, len: c.len[i]!, writable: c.isWritable(i) });
        const r = await mem.mapMany(ranges);
        if (typeof r === "string")
          throw new QueueError("buffer-unreachable", `queue ${q.index}: chain ${c.head}: ${r}`);
        return r;
      },
      complete: async (q, regions, heads, lens) => {
        const epoch = this.epoch;
        const sent = await q.releasePushMany(regions, heads, lens, bus.irqPort ?? -1, () => {
          this.interruptStatus |= InterruptBit.VRING;
        });
        if (ioTraceOn && sent) ioTrace("dd.irq", InterruptBit.VRING);
        if (epoch === this.epoch) await this.io.signalUsed(q);
      },
      signalUsed: async (q) => {
        const epoch = this.epoch;
        if ((await q.needsInterrupt()) && epoch === this.epoch) this.interrupt(InterruptBit.VRING);
      },
      releaseAll: async (rs) => {
        if (rs.length === 0) return;
        if (mem.releaseMany !== undefined) await mem.releaseMany(rs);
        else await Promise.all(rs.map((r) => mem.release(r)));
      },
    };
  }

  /** Current device status byte. */
  get deviceStatus(): number {
    return this.status;
  }

  /** The driver's accepted features as [lo, hi] (valid after FEATURES_OK). */
  get acked(): readonly [number, number] {
    return [this.driverFeatures[0]!, this.driverFeatures[1]!];
  }

  /** A guest read of `size` bytes at `offset` in the window. */
  read(offset: number, size: number): number {
    if (offset >= Mmio.CONFIG) return this.device.configRead(offset - Mmio.CONFIG, size);
    if (size !== 4 || (offset & 3) !== 0) return 0;
    const q = this.queues[this.queueSel];
    switch (offset) {
      case Mmio.MAGIC_VALUE:
        return MMIO_MAGIC;
      case Mmio.VERSION:
        return MMIO_VERSION;
      case Mmio.DEVICE_ID:
        return this.device.deviceId;
      case Mmio.VENDOR_ID:
        return 0;
      case Mmio.DEVICE_FEATURES:
        return this.deviceFeaturesSel < 2 ? this.offered[this.deviceFeaturesSel]! : 0;
      case Mmio.QUEUE_NUM_MAX:
        return q === undefined ? 0 : q.maxSize;
      case Mmio.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case Mmio.INTERRUPT_STATUS:
        return this.interruptStatus;
      case Mmio.STATUS:
        return this.status;
      case Mmio.SHM_LEN_LOW:
      case Mmio.SHM_LEN_HIGH:
      case Mmio.SHM_BASE_LOW:
      case Mmio.SHM_BASE_HIGH:
        return 0xffff_ffff; // no shared memory regions
      case Mmio.CONFIG_GENERATION:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  /** A guest write of `size` bytes at `offset` in the window. */
  write(offset: number, size: number, value: number): void {
    value >>>= 0;
    if (offset >= Mmio.CONFIG) {
      if ((this.status & Status.DRIVER) !== 0 && (this.status & (Status.FAILED | Status.DEVICE_NEEDS_RESET)) === 0)
        this.device.configWrite?.(offset - Mmio.CONFIG, size, value);
      return;
    }
    if (size !== 4 || (offset & 3) !== 0) return;
    switch (offset) {
      case Mmio.DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = value;
        return;
      case Mmio.DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = value;
        return;
      case Mmio.DRIVER_FEATURES:
        if (this.driverFeaturesSel < 2 && this.statusIs(Status.DRIVER, Status.FEATURES_OK))
          this.driverFeatures[this.driverFeaturesSel] = value;
        return;
      case Mmio.QUEUE_SEL:
        this.queueSel = value;
        return;
      case Mmio.QUEUE_NOTIFY:
        // Without NOTIFICATION_DATA the value is the queue index; an index past the device's
        // queues is ignored, a notify for one of its queues that the driver never made ready
        // (once live) breaks the device: a driver that does that has lost track of its rings.
        this.notify(value & 0xffff);
        return;
      case Mmio.INTERRUPT_ACK:
        if ((this.status & Status.DRIVER_OK) !== 0) this.interruptStatus &= ~value;
        return;
      case Mmio.STATUS:
        this.setStatus(value & 0xff);
        return;
    }
    const q = this.queues[this.queueSel];
    // Queue registers: only between FEATURES_OK and DRIVER_OK, and only while the queue is not ready.
    if (q === undefined || !this.statusIs(Status.FEATURES_OK, Status.DRIVER_OK)) return;
    if (offset === Mmio.QUEUE_READY) {
      q.ready = value === 1;
      return;
    }
    if (q.ready) return;
    switch (offset) {
      case Mmio.QUEUE_NUM:
        q.size = value;
        return;
      case Mmio.QUEUE_DESC_LOW:
        q.descLo = value;
        return;
      case Mmio.QUEUE_DESC_HIGH:
        q.descHi = value;
        return;
      case Mmio.QUEUE_DRIVER_LOW:
        q.availLo = value;
        return;
      case Mmio.QUEUE_DRIVER_HIGH:
        q.availHi = value;
        return;
      case Mmio.QUEUE_DEVICE_LOW:
        q.usedLo = value;
        return;
      case Mmio.QUEUE_DEVICE_HIGH:
        q.usedHi = value;
        return;
    }
  }

  /** The device's config changed: a new generation and, once live, a config interrupt. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if ((this.status & Status.DRIVER_OK) !== 0) this.interrupt(InterruptBit.CONFIG);
  }

  /**
   * The transport's state (VirtioMmioState). Throws while queue work runs or a chain is in
   * flight: quiesce first (the guest paused, then snapshot()).
   */
  getState(): VirtioMmioState {
    if (this.runs.some((r) => r.busy) || this.activating)
      throw new Error(`virtio-${this.device.name} d${this.bus.guest}: busy, cannot snapshot`);
    return {
      version: VIRTIO_MMIO_STATE_VERSION,
      deviceId: this.device.deviceId,
      status: this.status,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      driverFeatures: [this.driverFeatures[0]!, this.driverFeatures[1]!],
      queueSel: this.queueSel,
      interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration,
      queues: this.queues.map((q) => q.getState()),
      ...(this.device.getState !== undefined ? { device: this.device.getState() } : {}),
    };
  }

  /**
   * Waits (up to timeoutMs) for queue work to finish, then getState(). The guest must not kick
   * meanwhile: it is paused.
   */
  async snapshot(timeoutMs = 5000): Promise<VirtioMmioState> {
    const end = performance.now() + timeoutMs;
    while ((this.runs.some((r) => r.busy) || this.activating) && performance.now() < end)
      await new Promise((r) => setTimeout(r, 1));
    return this.getState();
  }

  /**
   * Takes over a snapshot (from getState, possibly on another host): the device is reset, the
   * registers loaded and, if the driver had it running, the rings mapped again (through the
   * guest's grants here) and each queue resumed at its ring positions, an unacknowledged
   * interrupt raised again, and each queue kicked once in case the driver queued work meanwhile. A snapshot that fails the checks is refused with an Error
   * and the device stays reset; rings that cannot be mapped give DEVICE_NEEDS_RESET, as any
   * broken rule does.
   */
  async setState(s: VirtioMmioState): Promise<void> {
    checkState(s, this.device, this.queues);
    this.reset();
    await this.idle();
    this.deviceFeaturesSel = s.deviceFeaturesSel >>> 0;
    this.driverFeaturesSel = s.driverFeaturesSel >>> 0;
    this.driverFeatures[0] = s.driverFeatures[0] >>> 0;
    this.driverFeatures[1] = s.driverFeatures[1] >>> 0;
    this.queueSel = s.queueSel >>> 0;
    this.configGeneration = s.configGeneration >>> 0;
    for (const q of this.queues) q.setState(s.queues[q.index]!);
    if (s.device !== undefined) this.device.setState?.(s.device);
    if ((s.status & Status.FEATURES_OK) !== 0) this.device.negotiated?.(this.driverFeatures[0], this.driverFeatures[1]);
    this.status = s.status;
    this.interruptStatus = s.interruptStatus >>> 0;
    if (!this.statusIs(Status.DRIVER_OK, 0)) return;
    this.activate((q) => q.resume(s.queues[q.index]!));
    if (!(await this.activation)) return;
    // An interrupt the driver had not acknowledged is raised again: the event that carried it
    // may not have reached the guest before its state was taken (a spurious one is harmless).
    if (this.interruptStatus !== 0) this.bus.raiseInterrupt();
    for (let i = 0; i < this.queues.length; i++) this.kick(i);
  }

  /** Waits until no queue work is running (tests; an orderly stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && (this.runs.some((r) => r.busy) || this.activating); i++)
      await new Promise((r) => setImmediate(r));
  }
  private activating = false;

  /** True when `has` is set and none of `not` (nor FAILED / NEEDS_RESET) is. */
  private statusIs(has: number, not: number): boolean {
    return (this.status & has) === has && (this.status & (not | Status.FAILED | Status.DEVICE_NEEDS_RESET)) === 0;
  }

  private setStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    if ((v & Status.FAILED) !== 0) {
      this.status |= Status.FAILED;
      return;
    }
    const s = this.status & ~Status.DEVICE_NEEDS_RESET;
    const legal =
      (s === 0 && v === Status.ACKNOWLEDGE) ||
      (s === Status.ACKNOWLEDGE && v === (Status.ACKNOWLEDGE | Status.DRIVER)) ||
      (s === (Status.ACKNOWLEDGE | Status.DRIVER) && v === (s | Status.FEATURES_OK)) ||
      (s === (Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK) && v === (s | Status.DRIVER_OK));
    if (!legal || (this.status & Status.DEVICE_NEEDS_RESET) !== 0) {
      this.bus.log(
        `virtio-${this.device.name} d${this.bus.guest}: status write 0x${v.toString(16)} after 0x${this.status.toString(16)} ignored`,
      );
      return;
    }
    if ((v & Status.FEATURES_OK) !== 0 && (s & Status.FEATURES_OK) === 0) {
      if (!this.featuresAcceptable()) return; // FEATURES_OK does not stick: the driver reads it back
    }
    this.status = v;
    if ((v & Status.DRIVER_OK) !== 0 && (s & Status.DRIVER_OK) === 0) this.activate();
  }

  private featuresAcceptable(): boolean {
    const [lo, hi] = [this.driverFeatures[0]!, this.driverFeatures[1]!];
    if ((lo & ~this.offered[0]) !== 0 || (hi & ~this.offered[1]) !== 0) return false;
    const v1 = bit(Feature.VERSION_1)[1];
    if ((hi & v1) === 0) return false;
    // Restricted (grant) access only works if the driver uses the platform's DMA translation.
    if (this.bus.restricted && (hi & bit(Feature.ACCESS_PLATFORM)[1]) === 0) return false;
    if (this.device.negotiated !== undefined && !this.device.negotiated(lo, hi)) return false;
    const eventIdx = (lo & bit(Feature.EVENT_IDX)[0]) !== 0;
    const indirect = (lo & bit(Feature.INDIRECT_DESC)[0]) !== 0;
    for (const q of this.queues) {
      q.eventIdx = eventIdx;
      q.indirect = indirect;
    }
    return true;
  }

  private activate(resume?: (q: SplitQueue) => void): void {
    const epoch = this.epoch;
    this.activating = true;
    this.activation = (async () => {
      try {
        for (const q of this.queues)
          if (q.ready) {
            await q.activate(this.bus.memory);
            resume?.(q);
          }
        return true;
      } catch (e) {
        if (epoch === this.epoch) this.fail(e);
        return false;
      } finally {
        this.activating = false;
      }
    })();
  }

  private notify(index: number): void {
    const q = this.queues[index];
    if (q !== undefined && !q.ready && this.statusIs(Status.DRIVER_OK, 0)) {
      this.fail(new QueueError("queue-not-ready", `notify for queue ${index}, which the driver did not make ready`));
      return;
    }
    this.kick(index);
  }

  private kick(index: number): void {
    const q = this.queues[index];
    const run = this.runs[index];
    if (q === undefined || run === undefined || !q.ready || !this.statusIs(Status.DRIVER_OK, 0)) return;
    if (run.busy) {
      run.again = true;
      return;
    }
    void this.serve(q, run);
  }

  private async serve(q: SplitQueue, run: QueueRun): Promise<void> {
    const epoch = this.epoch;
    run.busy = true;
    try {
      if (this.activation === null || !(await this.activation)) return;
      do {
        run.again = false;
        if (epoch !== this.epoch || !q.active) return;
        const waiting = (await this.device.processQueue(q, this.io)) === QUEUE_WAIT;
        if (epoch !== this.epoch) return;
        if (await q.needsInterrupt()) this.interrupt(InterruptBit.VRING);
        // Buffers left on purpose are not new work: the device wakes the queue itself.
        if ((await q.armNotify()) && !waiting) run.again = true;
      } while (run.again && epoch === this.epoch);
    } catch (e) {
      if (epoch === this.epoch) this.fail(e);
    } finally {
      run.busy = false;
    }
  }

  private interrupt(bits: number): void {
    if (ioTraceOn) ioTrace("dd.irq", bits);
    this.interruptStatus |= bits;
    this.bus.raiseInterrupt();
    if ((bits & InterruptBit.CONFIG) !== 0) this.repeatConfig(CONFIG_REPEAT_FIRST_MS);
  }

  /**
   * An event channel is an edge, virtio-mmio's interrupt a level: while the driver has not
   * acknowledged a config interrupt (InterruptACK, or a reset), it is raised again, backing off
   * to once a second, as a level-triggered line would stay up. A driver that took it together
   * with a used-buffer interrupt and found a used buffer would otherwise never look at the status
   * again (drivers read it when woken with nothing used, not before every wait).
   */
  private repeatConfig(ms: number): void {
    if (this.configRepeat !== null) return;
    this.configRepeat = setTimeout(() => {
      this.configRepeat = null;
      if ((this.interruptStatus & InterruptBit.CONFIG) === 0) return;
      this.bus.raiseInterrupt();
      this.repeatConfig(Math.min(ms * 2, CONFIG_REPEAT_MAX_MS));
    }, ms);
    this.configRepeat.unref?.();
  }
  private configRepeat: ReturnType<typeof setTimeout> | null = null;

  /**
   * The device's previous incarnation died (its driver domain was restarted): whatever the driver
   * set up is gone. NEEDS_RESET and a config interrupt tell it to reset and set the device up again.
   */
  lostState(): void {
    this.status = Status.DEVICE_NEEDS_RESET;
    this.interrupt(InterruptBit.CONFIG);
  }

  /** A broken rule (or a device bug): NEEDS_RESET, a config interrupt, one log line. */
  private fail(e: unknown): void {
    if (e instanceof GuestGoneError) return; // nobody left to tell

    this.faults++;
    const what = e instanceof QueueError ? e.message : `device error: ${(e as Error).message ?? String(e)}`;
    this.bus.log(`virtio-${this.device.name} d${this.bus.guest}: ${what}; device needs reset`);
    this.status |= Status.DEVICE_NEEDS_RESET;
    if ((this.status & Status.DRIVER_OK) !== 0) this.interrupt(InterruptBit.CONFIG);
  }

  private reset(): void {
    this.epoch++;
    this.status = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.driverFeatures[0] = this.driverFeatures[1] = 0;
    this.interruptStatus = 0;
    this.activation = null;
    for (const r of this.runs) r.again = false;
    // Ring mappings go back asynchronously; the queues read as not ready at once.
    for (const q of this.queues) void q.reset();
    this.device.reset();
  }
}

/** The shape checks of setState: a snapshot from elsewhere is input like any other. */
function checkState(s: VirtioMmioState, device: VirtioDevice, queues: readonly SplitQueue[]): void {
  const bad = (why: string) => new Error(`virtio-${device.name} snapshot refused: ${why}`);
  if (typeof s !== "object" || s === null) throw bad("not an object");
  if (s.version !== VIRTIO_MMIO_STATE_VERSION)
    throw bad(`version ${String(s.version)}, want ${VIRTIO_MMIO_STATE_VERSION}`);
  if (s.deviceId !== device.deviceId) throw bad(`device id ${s.deviceId}, this device is ${device.deviceId}`);
  const u32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
  for (const k of [
    "status",
    "deviceFeaturesSel",
    "driverFeaturesSel",
    "queueSel",
    "interruptStatus",
    "configGeneration",
  ] as const)
    if (!u32(s[k])) throw bad(`${k} is not a 32-bit value`);
  if (!Array.isArray(s.driverFeatures) || s.driverFeatures.length !== 2 || !s.driverFeatures.every(u32))
    throw bad("driverFeatures is not two 32-bit words");
  const live = s.status & ~(Status.DEVICE_NEEDS_RESET | Status.FAILED);
  const legal = [
    0,
    Status.ACKNOWLEDGE,
    Status.ACKNOWLEDGE | Status.DRIVER,
    Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK,
    Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK,
  ];
  if (s.status > 0xff || !legal.includes(live))
    throw bad(`status 0x${s.status.toString(16)} is not a state the device can be in`);
  if (!Array.isArray(s.queues) || s.queues.length !== queues.length)
    throw bad(`${Array.isArray(s.queues) ? s.queues.length : "no"} queues, the device has ${queues.length}`);
  s.queues.forEach((q, i) => {
    const max = queues[i]!.maxSize;
    const pair = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every(u32);
    if (typeof q !== "object" || q === null) throw bad(`queue ${i} is not an object`);
    if (!u32(q.size) || q.size === 0 || q.size > max || (q.size & (q.size - 1)) !== 0)
      throw bad(`queue ${i}: size ${String(q.size)} (max ${max}, power of two)`);
    if (!pair(q.desc) || !pair(q.avail) || !pair(q.used)) throw bad(`queue ${i}: ring addresses`);
    for (const k of ["nextAvail", "nextUsed", "signalledUsed"] as const)
      if (!u32(q[k]) || q[k] > 0xffff) throw bad(`queue ${i}: ${k} is not a 16-bit index`);
    if (((q.nextAvail - q.nextUsed) & 0xffff) !== 0)
      throw bad(`queue ${i}: chains in flight (avail ${q.nextAvail}, used ${q.nextUsed})`);
    for (const k of ["ready", "eventIdx", "indirect"] as const)
      if (typeof q[k] !== "boolean") throw bad(`queue ${i}: ${k} is not a boolean`);
  });
}
