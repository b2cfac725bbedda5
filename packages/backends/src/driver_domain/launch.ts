/**
 * Driver domains from the host's side (the toolstack's part): creates the domain in the core
 * (unprivileged, no RAM of its own), names it device model for each of its guests
 * (XEN_DOMCTL_set_target), links each device's interrupt with a static interdomain event channel
 * (the guest's end is the port its device tree names), starts the kernel in a worker thread or a
 * child process, and supervises it.
 *
 * Supervision: the kernel answers a ping every `heartbeatMs`; one that throws, exits, outgrows
 * its memory limit or misses pongs for `hangTimeoutMs` is killed and its domain destroyed — the
 * core then tears its IOREQ servers down (a vCPU waiting on one reads all-ones). With `restart`
 * the same device slots come back in a new domain with the same domid (the guests' grants and
 * trees name it); each device starts with DEVICE_NEEDS_RESET and a config interrupt.
 *
 * XenStore (when the host runs it: `xenstore`): before each start the toolstack's hook writes the
 * devices' backend and frontend nodes and hands back a connection bound to this domid, which the
 * kernel uses as Xen's virtio backends use theirs (xenbus.ts): it checks its nodes, writes state
 * 4 once its IOREQ servers are up and 6 when it stops a device; then the hook removes the nodes.
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { evtchnBindStatic, evtchnCloseUnbound, type Hypervisor, p2mPoolPagesFor, servePort } from "@xenon/hypervisor";
import type { VirtioMmioState } from "../virtio/mmio_transport.js";
import { MessagePortSwitchPort } from "../vswitch/message_port.js";
import type { SwitchPort } from "../vswitch/port.js";
import type { DriverDomainMode } from "./kernel.js";
import type { DriverDomainWorkerData } from "./main.js";
import { startProcessKernel } from "./process_host.js";
import type {
  DeviceSlot,
  DriverDomainBoot,
  DriverDomainDown,
  DriverDomainUp,
  FaultKind,
  VirtioDeviceSpec,
} from "./protocol.js";

/** One device of a driver domain, as the toolstack places it. */
export interface DriverDomainDevice {
  readonly guest: number;
  /** The guest's virtio-mmio window. */
  readonly base: number;
  readonly size: number;
  /** The guest's end of the interrupt channel (its device tree's `interrupts` cell). */
  readonly guestIrqPort: number;
  readonly device: VirtioDeviceSpec;
  /** false: no grants, guest-physical addresses, foreign mapping (see DeviceSlot.grants). */
  readonly grants?: boolean;
  /**
   * The device's saved state (VirtioMmioTransport.getState on another host): the guest migrated
   * here and its driver expects the device as it left it. The guest's end of the interrupt
   * channel, left unbound by the restore, is taken over.
   */
  readonly state?: VirtioMmioState;
  /** Its number among the guest's virtio devices in XenStore (default: its place among this domain's devices for that guest). */
  readonly devid?: number;
}

/** A device as XenStore names it (devid resolved). */
export type DriverDomainXenstoreDevice = DriverDomainDevice & { readonly devid: number };

/** What the toolstack's XenStore hook is told when a driver domain's kernel is about to start. */
export interface DriverDomainXenstoreAttach {
  readonly domid: number;
  readonly name: string;
  readonly privileged: boolean;
  /** A restart: the last incarnation's connection and nodes may still be there. */
  readonly restarted: boolean;
  readonly devices: readonly DriverDomainXenstoreDevice[];
}

/**
 * XenStore for a driver domain, the toolstack's part (libxl's device code; the toolstack's
 * `virtioXenstore` implements it over the XenStore domain).
 */
export interface DriverDomainXenstore {
  /**
   * The domain exists and its kernel is about to start (at launch and after each restart): write
   * the devices' backend and frontend nodes (state 1) and return the kernel's end of a XenStore
   * connection bound to `domid` by the XenStore domain (XenstoreDomainHandle.connectDomain).
   */
  attach(dd: DriverDomainXenstoreAttach): Promise<MessagePort>;
  /** The kernel stopped serving `devices` (it wrote state 6, or died): remove their nodes. */
  detach(domid: number, devices: readonly DriverDomainXenstoreDevice[]): Promise<void>;
}

export interface DriverDomainOptions {
  readonly devices: readonly DriverDomainDevice[];
  /** "thread" (default): a worker thread, shared views; "process": a child process, grant copy. */
  readonly mode?: DriverDomainMode;
  /** The driver domain's domid (default: the lowest free one); kept across restarts. */
  readonly domid?: number;
  /** Domain name (default "dd-<kinds>"). */
  readonly name?: string;
  readonly log?: (line: string) => void;
  /**
   * A privileged (dom0-like) driver domain: it may foreign-map its guests' memory, so it can
   * serve devices without grants. Default false: only what the guests grant is reachable.
   */
  readonly privileged?: boolean;
  /** Restart the domain when it fails (default false). */
  readonly restart?: boolean;
  /** Ping interval (default 500 ms) and how long without a pong means hung (default 10 s). */
  readonly heartbeatMs?: number;
  readonly hangTimeoutMs?: number;
  /** Old-generation heap limit of the kernel (default 256 MiB). */
  readonly memoryLimitMiB?: number;
  /** Let inject() reach the kernel (tests). */
  readonly faultHooks?: boolean;
  /**
   * Where a virtio-console's transmitted bytes go (device index, bytes). Default: the console
   * stream of that device's guest (the sink its CONSOLEIO output reaches, filtered and
   * line-buffered the same way).
   */
  readonly consoleOutput?: (device: number, bytes: Uint8Array) => void;
  /** Called after each restart, with the reason the previous incarnation died. */
  readonly onRestart?: (count: number, reason: string) => void;
  /** The host switch the net devices' vifs plug into (needed when there is a net device). */
  readonly vswitch?: VifSwitch;
  /** The host's XenStore: the kernel gets a connection and uses its devices' nodes. Without it, none (as before). */
  readonly xenstore?: DriverDomainXenstore;
}

/** What a driver domain needs of the host's switch (VirtualSwitch has it). */
export interface VifSwitch {
  plug(port: SwitchPort): void;
  unplug(name: string): boolean;
  portNames(): string[];
}

/** A running kernel, whichever its mode. */
export interface KernelRun {
  send(m: DriverDomainDown): void;
  /** Ends it at once (terminate / SIGKILL) and closes its hypercall port. */
  kill(): Promise<void>;
}

export interface KernelEvents {
  up(m: DriverDomainUp): void;
  /** It died on its own (threw, exited, ran out of memory). */
  died(reason: string): void;
}

export interface KernelStart {
  readonly hv: Hypervisor;
  readonly domid: number;
  readonly boot: DriverDomainBoot;
  readonly memoryLimitMiB: number;
  /** The kernel's ends of its net devices' vifs, by slot index. */
  readonly vifs: ReadonlyArray<readonly [number, MessagePort]>;
  /** The kernel's end of its XenStore connection (thread mode moves it in; process mode relays it). */
  readonly xs?: MessagePort;
}

function startThreadKernel(s: KernelStart, ev: KernelEvents): KernelRun {
  const hc = new MessageChannel();
  servePort(s.hv, s.domid, hc.port1);
  const ctl = new MessageChannel();
  const data: DriverDomainWorkerData = {
    hypercall: hc.port2,
    control: ctl.port2,
    boot: s.boot,
    vifs: s.vifs,
    ...(s.xs !== undefined ? { xs: s.xs } : {}),
  };
  const worker = new Worker(new URL("./main.js", import.meta.url), {
    workerData: data,
    transferList: [hc.port2, ctl.port2, ...s.vifs.map(([, p]) => p), ...(s.xs !== undefined ? [s.xs] : [])],
    resourceLimits: { maxOldGenerationSizeMb: s.memoryLimitMiB },
  });
  let dead = false;
  const die = (why: string) => {
    if (dead) return;
    dead = true;
    ev.died(why);
  };
  ctl.port1.on("message", (m: DriverDomainUp) => ev.up(m));
  worker.on("error", (e) =>
    die((e as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY" ? "out of memory" : `threw: ${e.message}`),
  );
  worker.on("exit", (code) => die(`exited (${code})`));
  return {
    send: (m) => ctl.port1.postMessage(m),
    kill: async () => {
      dead = true;
      ctl.port1.close();
      hc.port1.close();
      await worker.terminate();
    },
  };
}

export class DriverDomain {
  private run: KernelRun | null = null;
  private closing: Promise<void> | null = null;
  private lastPong = 0;
  private pingSeq = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private recovering: Promise<void> | null = null;
  /** How many times the domain was restarted. */
  restarts = 0;
  readonly mode: DriverDomainMode;
  private slots: DeviceSlot[];
  /** Requests waiting for the kernel's reply, by id. */
  private readonly replies = new Map<number, (r: Extract<DriverDomainUp, { reply: unknown }>["reply"]) => void>();
  private replySeq = 0;
  /** Names of this domain's vifs on the switch (re-plugged at each start). */
  private vifNames: string[] = [];

  private constructor(
    private readonly hv: Hypervisor,
    private readonly o: DriverDomainOptions,
    readonly domid: number,
    /** Its name in the core (and in XenStore). */
    readonly name: string,
  ) {
    this.mode = o.mode ?? "thread";
    this.slots = o.devices.map((d, i) => ({
      ...d,
      irqPort: DD_IRQ_PORT_BASE + i,
      devid: d.devid ?? o.devices.slice(0, i).filter((x) => x.guest === d.guest).length,
    }));
  }

  static async launch(hv: Hypervisor, o: DriverDomainOptions): Promise<DriverDomain> {
    if (o.devices.length === 0) throw new Error("a driver domain needs at least one device");
    const d = createDomain(hv, o, o.domid, o.devices);
    const dd = new DriverDomain(hv, o, d, hv.domains.get(d)?.name ?? `d${d}`);
    try {
      for (const s of dd.slots) {
        const guest = hv.domains.get(s.guest)!;
        // A guest restored here keeps its end of the channel unbound, naming its old backend.
        if (s.state !== undefined) evtchnCloseUnbound(hv, guest, s.guestIrqPort);
        const rc = evtchnBindStatic(guest, s.guestIrqPort, hv.domains.get(d)!, s.irqPort);
        if (rc < 0) throw new Error(`interrupt channel d${s.guest}:${s.guestIrqPort} refused (${rc})`);
      }
      await dd.start(false);
      // A saved state is for this first start only; a restart begins from a reset device.
      dd.slots = dd.slots.map(({ state: _, ...slot }) => slot);
    } catch (e) {
      dd.unplugVifs();
      await dd.o.xenstore?.detach(d, dd.xenstoreDevices()).catch(() => {});
      hv.domains.destroy(d);
      throw e;
    }
    return dd;
  }

  /** The kernel's log lines go here. */
  private log(line: string): void {
    this.o.log?.(line);
  }

  /** The devices still served, as XenStore names them. */
  private xenstoreDevices(guest?: number): DriverDomainXenstoreDevice[] {
    return this.slots
      .filter((s) => !s.detached && (guest === undefined || s.guest === guest))
      .map(({ irqPort: _, detached: __, state: ___, ...d }) => d);
  }

  /** Starts a kernel for the existing domain and waits for its ready. */
  private async start(restarted: boolean): Promise<void> {
    const xs = await this.o.xenstore?.attach({
      domid: this.domid,
      name: this.name,
      privileged: this.o.privileged === true,
      restarted,
      devices: this.xenstoreDevices(),
    });
    const boot: DriverDomainBoot = {
      devices: this.slots,
      restarted,
      faultHooks: this.o.faultHooks === true,
      ...(xs !== undefined ? { xenstore: true } : {}),
    };
    const vifs = this.plugVifs();
    const s: KernelStart = {
      hv: this.hv,
      domid: this.domid,
      boot,
      memoryLimitMiB: this.o.memoryLimitMiB ?? 256,
      vifs,
      ...(xs !== undefined ? { xs } : {}),
    };
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const ev: KernelEvents = {
        up: (m) => {
          if ("console" in m) this.consoleOutput(m.console.slot, m.console.bytes);
          else if ("log" in m) this.log(m.log);
          else if ("pong" in m) this.lastPong = performance.now();
          else if ("reply" in m) {
            const done = this.replies.get(m.reply.id);
            this.replies.delete(m.reply.id);
            done?.(m.reply);
          } else if ("stopped" in m) this.stopWaiter?.();
          else if ("failed" in m && !ready) {
            void run.kill();
            reject(new Error(`driver domain d${this.domid}: ${m.failed}`));
          } else if ("ready" in m) {
            ready = true;
            this.lastPong = performance.now();
            this.armHeartbeat();
            resolve();
          }
        },
        died: (why) => {
          if (!ready) reject(new Error(`driver domain d${this.domid}: ${why} while starting`));
          else this.failed(why);
        },
      };
      const run = this.mode === "thread" ? startThreadKernel(s, ev) : startProcessKernel(s, ev);
      this.run = run;
    });
  }

  /**
   * Plugs one switch port per net device, "vif<guest>.<n>" with the lowest free n, and returns
   * the kernel's ends. Earlier ports of this domain are unplugged first (a restart).
   */
  private plugVifs(): Array<[number, MessagePort]> {
    this.unplugVifs();
    const out: Array<[number, MessagePort]> = [];
    for (const [i, slot] of this.slots.entries()) {
      if (slot.device.kind !== "net") continue;
      const sw = this.o.vswitch;
      if (sw === undefined) throw new Error(`driver domain d${this.domid}: a net device needs a switch`);
      const taken = new Set(sw.portNames());
      let n = 0;
      while (taken.has(`vif${slot.guest}.${n}`)) n++;
      const ch = new MessageChannel();
      const name = `vif${slot.guest}.${n}`;
      sw.plug(new MessagePortSwitchPort(name, ch.port1));
      this.vifNames.push(name);
      out.push([i, ch.port2]);
    }
    return out;
  }

  private unplugVifs(): void {
    for (const name of this.vifNames.splice(0)) this.o.vswitch?.unplug(name);
  }

  private armHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    const every = this.o.heartbeatMs ?? 500;
    const limit = this.o.hangTimeoutMs ?? 10_000;
    this.heartbeat = setInterval(() => {
      if (performance.now() - this.lastPong > limit) this.failed(`stopped answering for ${limit} ms`);
      else this.run?.send({ ping: ++this.pingSeq });
    }, every);
    this.heartbeat.unref();
  }

  /** The kernel died or hung: kill it, destroy the domain, and restart if asked. */
  private failed(why: string): void {
    if (this.closing !== null || this.recovering !== null) return;
    this.log(`driver domain d${this.domid}: ${why}; domain destroyed`);
    this.recovering = (async () => {
      if (this.heartbeat !== null) clearInterval(this.heartbeat);
      this.heartbeat = null;
      await this.run?.kill();
      this.run = null;
      this.unplugVifs();
      this.hv.domains.destroy(this.domid);
      if (this.o.restart !== true || this.closing !== null) return;
      try {
        createDomain(
          this.hv,
          this.o,
          this.domid,
          this.slots.filter((s) => !s.detached),
        );
        await this.start(true);
        this.restarts++;
        this.log(`driver domain d${this.domid}: restarted (${this.restarts})`);
        this.o.onRestart?.(this.restarts, why);
      } catch (e) {
        this.log(`driver domain d${this.domid}: restart failed: ${(e as Error).message}`);
        this.hv.domains.destroy(this.domid);
      }
    })().finally(() => {
      this.recovering = null;
    });
  }

  private consoleOutput(slot: number, bytes: Uint8Array): void {
    if (this.o.consoleOutput !== undefined) this.o.consoleOutput(slot, bytes);
    else {
      const guest = this.slots[slot]?.guest;
      if (guest !== undefined) this.hv.domains.get(guest)?.console.write(bytes);
    }
  }

  /**
   * Host input for a virtio-console: device `slot` (default: this domain's first console).
   * Dropped while the kernel is down or closing.
   */
  sendInput(bytes: Uint8Array, slot = this.slots.findIndex((s) => s.device.kind === "console")): void {
    if (slot < 0 || this.closing !== null) return;
    this.run?.send({ input: { slot, bytes } });
  }

  /** The devices this domain serves to `guest` (none once it was detached). */
  devicesOf(guest: number): DriverDomainDevice[] {
    return this.slots
      .filter((s) => s.guest === guest && !s.detached)
      .map(({ guest: g, base, size, guestIrqPort, device, grants }) => ({
        guest: g,
        base,
        size,
        guestIrqPort,
        device,
        ...(grants !== undefined ? { grants } : {}),
      }));
  }

  /**
   * The states of `guest`'s devices, in devicesOf() order (VirtioMmioTransport.getState): the
   * guest must be paused, with no vCPU waiting on an ioreq. Doorbells it rang are served and
   * queue work finishes first. The devices go on serving.
   */
  async snapshot(guest: number): Promise<VirtioMmioState[]> {
    const r = await this.request((id) => ({ snapshot: { id, guest } }));
    if (r.states === undefined) throw new Error(`driver domain d${this.domid}: snapshot: no states`);
    return r.states;
  }

  /** `guest` left this host: its IOREQ server goes, its devices reset and close; a restart skips them. */
  async detach(guest: number): Promise<void> {
    await this.request((id) => ({ detach: { id, guest } }));
    const gone = this.xenstoreDevices(guest);
    this.slots = this.slots.map((s) => (s.guest === guest ? { ...s, detached: true } : s));
    await this.o.xenstore?.detach(this.domid, gone);
  }

  private request(
    make: (id: number) => DriverDomainDown,
    timeoutMs = 10_000,
  ): Promise<Extract<DriverDomainUp, { reply: unknown }>["reply"]> {
    const run = this.run;
    if (run === null || this.closing !== null || this.recovering !== null)
      return Promise.reject(new Error(`driver domain d${this.domid} is not running`));
    const id = ++this.replySeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new Error(`driver domain d${this.domid}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.replies.set(id, (r) => {
        clearTimeout(timer);
        if (r.error !== undefined) reject(new Error(`driver domain d${this.domid}: ${r.error}`));
        else resolve(r);
      });
      run.send(make(id));
    });
  }

  /**
   * Test hook (needs faultHooks): the kernel writes `value` at `path` through its own XenStore
   * connection. Resolves "OK" or the XenStore error name (EACCES, ...).
   */
  async xenstoreWrite(path: string, value: string): Promise<string> {
    if (this.o.faultHooks !== true) throw new Error("fault hooks are off");
    const r = await this.request((id) => ({ xsWrite: { id, path, value } })).catch((e: Error) => ({
      error: e.message,
    }));
    return r.error === undefined ? "OK" : (/\b(E[A-Z0-9]+)\b/.exec(r.error)?.[1] ?? r.error);
  }

  /** Test hook: make the kernel misbehave (needs faultHooks). */
  inject(kind: FaultKind): void {
    if (this.o.faultHooks !== true) throw new Error("fault hooks are off");
    this.run?.send({ fault: kind });
  }

  /** Resolves once no restart is under way. */
  async settled(): Promise<void> {
    while (this.recovering !== null) await this.recovering;
  }

  /** Stops the kernel, ends it and destroys the driver domain. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.heartbeat !== null) clearInterval(this.heartbeat);
      await this.recovering;
      const run = this.run;
      if (run !== null) {
        const stopped = new Promise<void>((resolve) => {
          const prev = this.stopWaiter;
          this.stopWaiter = () => {
            prev?.();
            resolve();
          };
        });
        run.send({ stop: true });
        await Promise.race([stopped, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
        await run.kill();
      }
      // The kernel wrote state 6 on its way out: the toolstack removes the devices' nodes.
      await this.o.xenstore
        ?.detach(this.domid, this.xenstoreDevices())
        .catch((e: unknown) => this.log(`driver domain d${this.domid}: xenstore: ${(e as Error).message}`));
      this.unplugVifs();
      this.hv.domains.destroy(this.domid);
    })();
    return this.closing;
  }
  private stopWaiter: (() => void) | null = null;
}

/** The driver domain's ends of the interrupt channels: 1, 2, ... (a fresh domain has them free). */
const DD_IRQ_PORT_BASE = 1;

function createDomain(
  hv: Hypervisor,
  o: DriverDomainOptions,
  domid: number | undefined,
  serving: readonly { readonly guest: number }[],
): number {
  const kinds = [...new Set(o.devices.map((d) => d.device.kind))].join("-");
  const d = hv.domains.create({
    ...(domid !== undefined ? { domid } : {}),
    name: o.name ?? `dd-${kinds}`,
    maxVcpus: 1,
    maxPages: 0,
    p2mPoolPages: p2mPoolPagesFor(0),
    ...(o.privileged === true ? { flags: { privileged: true } } : {}),
  });
  if (typeof d === "number") throw new Error(`driver domain creation failed (${d})`);
  for (const g of new Set(serving.map((x) => x.guest))) {
    if (hv.domains.get(g) === undefined) {
      hv.domains.destroy(d.domid);
      throw new Error(`no guest d${g}`);
    }
    hv.ioreq.setDmTarget(d.domid, g, true);
  }
  return d.domid;
}

/** One device in a driver domain of its own (the single-device form of DriverDomain.launch). */
export interface VirtioBackendOptions extends DriverDomainDevice {
  readonly domid?: number;
  readonly name?: string;
  readonly mode?: DriverDomainMode;
  readonly log?: (line: string) => void;
  /** A console's transmitted bytes (default: its guest's console stream). */
  readonly consoleOutput?: (bytes: Uint8Array) => void;
  readonly vswitch?: VifSwitch;
}

export type VirtioBackendHandle = DriverDomain;
export const VirtioBackendHandle = {
  launch(hv: Hypervisor, o: VirtioBackendOptions): Promise<DriverDomain> {
    const { domid, name, mode, log, consoleOutput, vswitch, ...device } = o;
    return DriverDomain.launch(hv, {
      devices: [device],
      ...(domid !== undefined ? { domid } : {}),
      name: name ?? `virtio-${o.device.kind}-d${o.guest}`,
      ...(mode !== undefined ? { mode } : {}),
      ...(log !== undefined ? { log } : {}),
      ...(consoleOutput !== undefined ? { consoleOutput: (_: number, b: Uint8Array) => consoleOutput(b) } : {}),
      ...(vswitch !== undefined ? { vswitch } : {}),
    });
  },
};
