import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DriverDomain, type DriverDomainDevice, type DriverDomainMode, type VirtioDeviceSpec } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { createVcpuState, FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  buildDomainMemory,
  buildGuestFdt,
  createScheduler,
  type DomainEnd,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
  Hypervisor,
  initBootVcpuState,
  Machine,
  p2mPoolPagesFor,
} from "@xenon/hypervisor";

/** The guest's end of its first device's interrupt channel (its tree's `interrupts` cell). */
export const GUEST_IRQ_PORT = 20;

export interface VirtioGuest {
  readonly image: string;
  readonly bootargs: string;
  readonly devices: readonly VirtioDeviceSpec[];
  /** false: the devices have no grants (no `iommus`; guest-physical addresses). Default true. */
  readonly grants?: boolean;
}

export interface VirtioRun {
  /** Console output per guest, in the order given. */
  readonly outs: string[];
  readonly ends: Array<{ reason: number; detail?: string }>;
  readonly log: string[];
  readonly driverDomains: DriverDomain[];
}

export interface VirtioRunOptions {
  readonly mode?: DriverDomainMode;
  /** One driver domain for every device (default: one per device). */
  readonly shared?: boolean;
  readonly restart?: boolean;
  readonly faultHooks?: boolean;
  readonly hangTimeoutMs?: number;
  readonly memoryLimitMiB?: number;
  readonly timeoutMs?: number;
  /** Privileged (dom0-like) driver domains, which may foreign-map. */
  readonly privileged?: boolean;
  /** Runs beside the guests (e.g. injects faults); `outs` is live. */
  readonly during?: (run: VirtioRun) => Promise<void>;
}

/**
 * Guests with virtio devices whose backends run in driver domains (grants only): each guest
 * finds its devices in its tree (windows from GUEST_VIRTIO_MMIO_BASE, ports from GUEST_IRQ_PORT),
 * and every register access travels as an ioreq.
 */
export async function runVirtioGuests(guests: readonly VirtioGuest[], o: VirtioRunOptions = {}): Promise<VirtioRun> {
  const memory = new MachineMemory({ bytes: 128 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const machine = new Machine({
    hv,
    timeMode: "host",
    pools: [
      {
        id: 0,
        name: "Pool-0",
        scheduler: createScheduler("credit2"),
        pcpus: [{ id: 0, cls: "big", speed: 1024 }],
      },
    ],
  });
  const run: VirtioRun = { outs: guests.map(() => ""), ends: [], log: [], driverDomains: [] };
  try {
    const ram = 4 << 20;
    const domids: number[] = [];
    const placed: Array<DriverDomainDevice & { guestIndex: number }> = [];
    for (const [gi, g] of guests.entries()) {
      const d = hv.domains.create({
        name: `${g.image}${gi}`,
        maxVcpus: 1,
        maxPages: ram / 4096 + 64,
        p2mPoolPages: p2mPoolPagesFor(ram / 4096 + 64),
        flags: { isConsole: true },
      });
      assert.ok(typeof d === "object");
      d.console.setSink((b) => {
        run.outs[gi] += Buffer.from(b).toString("latin1");
      });
      domids.push(d.domid);
      for (const [slot, device] of g.devices.entries())
        placed.push({
          guestIndex: gi,
          guest: d.domid,
          base: GUEST_VIRTIO_MMIO_BASE + slot * GUEST_VIRTIO_MMIO_SIZE,
          size: GUEST_VIRTIO_MMIO_SIZE,
          guestIrqPort: GUEST_IRQ_PORT + slot,
          device,
          ...(g.grants === false ? { grants: false } : {}),
        });
    }
    const common = {
      ...(o.mode !== undefined ? { mode: o.mode } : {}),
      ...(o.restart !== undefined ? { restart: o.restart } : {}),
      ...(o.faultHooks !== undefined ? { faultHooks: o.faultHooks } : {}),
      ...(o.hangTimeoutMs !== undefined ? { hangTimeoutMs: o.hangTimeoutMs } : {}),
      ...(o.memoryLimitMiB !== undefined ? { memoryLimitMiB: o.memoryLimitMiB } : {}),
      ...(o.privileged !== undefined ? { privileged: o.privileged } : {}),
      log: (l: string) => run.log.push(l),
    };
    const groups = o.shared === true ? [placed] : placed.map((p) => [p]);
    const backendOf = new Map<DriverDomainDevice, number>();
    for (const devices of groups) {
      const dd = await DriverDomain.launch(hv, { ...common, devices });
      run.driverDomains.push(dd);
      for (const p of devices) backendOf.set(p, dd.domid);
    }
    for (const [gi, g] of guests.entries()) {
      const d = hv.domains.get(domids[gi]!)!;
      const fdt = buildGuestFdt({
        domid: d.domid,
        name: g.image,
        vcpus: 1,
        ramBytes: ram,
        bootargs: g.bootargs,
        virtio: placed
          .filter((p) => p.guestIndex === gi)
          .map((p) => ({
            base: p.base,
            size: p.size,
            evtchn: p.guestIrqPort,
            backendDomid: backendOf.get(p)!,
            grants: p.grants !== false,
          })),
      });
      const placement = buildDomainMemory(d, readFileSync(guestImagePath(g.image)), ram, fdt);
      const state = createVcpuState();
      initBootVcpuState(state, placement, 0);
      machine.addDomain(d, 0, state);
    }
    const timeout = o.timeoutMs ?? 30_000;
    const ran = machine.run();
    const beside = o.during?.(run) ?? Promise.resolve();
    const ends: DomainEnd[] = await Promise.race([
      Promise.all([ran, beside]).then(([e]) => e),
      new Promise<never>((_, rej) =>
        setTimeout(
          () => rej(new Error(`timed out; consoles:\n${run.outs.join("\n--\n")}\nlog:\n${run.log.join("\n")}`)),
          timeout,
        ).unref(),
      ),
    ]);
    for (const domid of domids) {
      const end = ends.find((e) => e.domid === domid)!;
      run.ends.push({ reason: end.reason, ...(end.detail !== undefined ? { detail: end.detail } : {}) });
    }
    return run;
  } finally {
    for (const dd of run.driverDomains) await dd.close();
    await machine.close();
  }
}

/** One guest with one device in a driver domain of its own. */
export async function runVirtioGuest(
  image: string,
  bootargs: string,
  device: VirtioDeviceSpec,
  o: VirtioRunOptions = {},
): Promise<{ out: string; log: string[]; reason: number; detail?: string }> {
  const r = await runVirtioGuests([{ image, bootargs, devices: [device] }], o);
  const end = r.ends[0]!;
  return {
    out: r.outs[0]!,
    log: r.log,
    reason: end.reason,
    ...(end.detail !== undefined ? { detail: end.detail } : {}),
  };
}
