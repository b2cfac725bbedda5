/**
 * A running host for `xl` (`xenon host`, `xenon boot --serve`): the core and its Machine, a
 * Domain-0 that the toolstack acts as (a privileged TypeScript domain, like Xen's control
 * domain, with no guest code), the libxl API over them, the management endpoint, and XenStore on
 * a Unix socket with every domain introduced by name.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  createScheduler,
  Hypervisor,
  Machine,
  type MachinePoolConfig,
  p2mPoolPagesFor,
  type TimeMode,
} from "@xenon/hypervisor";
import type { HostPool } from "../libxl/ctx.js";
import { Libxl } from "../libxl/libxl.js";
import { MgmtServer } from "../mgmt/server.js";
import type { PoolSpec } from "../run/system.js";
import { XenstoreLink } from "../run/xenstore_link.js";

export interface HostOptions {
  readonly pools: readonly PoolSpec[];
  /** Host RAM in MiB (default 1024). */
  readonly hostMemoryMiB?: number;
  readonly timeMode?: TimeMode;
  /** Management endpoint address (default 127.0.0.1, any free port). */
  readonly listenHost?: string;
  readonly port?: number;
  /** XenStore socket (default: a fresh temporary directory's xenstored.sock). */
  readonly xenstoreSocket?: string;
  /** Every domain's console output, as it comes (`xenon host --console`). */
  readonly console?: (name: string, bytes: Uint8Array) => void;
}

/** The parts of an already built system a host can adopt (`xenon boot --serve`). */
export interface AdoptedSystem {
  readonly hv: Hypervisor;
  readonly machine: Machine;
  readonly pools: readonly HostPool[];
  readonly domains: ReadonlyArray<{ readonly domid: number; readonly name: string }>;
  /** Where every domain's console output also goes (the boot's own printer, `--console`). */
  readonly console?: (name: string, bytes: Uint8Array) => void;
  /** Stops what came with the system (its driver domains), once its Machine has stopped. */
  readonly close?: () => Promise<void>;
}

const CONTROL_DOMID = 0;

export class XenonHost {
  private closed = false;

  private constructor(
    readonly libxl: Libxl,
    readonly machine: Machine,
    readonly mgmt: MgmtServer,
    readonly xenstore: XenstoreLink,
    readonly xenstorePath: string,
    private readonly tmpDir: string | null,
    private readonly closeAdopted?: () => Promise<void>,
  ) {}

  get url(): string {
    return this.mgmt.url;
  }

  /** A new, empty host (only Domain-0) with the given cpupools. */
  static async start(opts: HostOptions): Promise<XenonHost> {
    if (opts.pools.length === 0) throw new Error("a host needs at least one cpupool");
    const memory = new MachineMemory({ bytes: (opts.hostMemoryMiB ?? 1024) * 2 ** 20 });
    const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
    const pools: MachinePoolConfig[] = opts.pools.map((p, id) => ({
      id,
      name: p.name,
      scheduler: createScheduler(p.scheduler),
      pcpus: p.pcpus,
    }));
    const machine = new Machine({ hv, timeMode: opts.timeMode ?? "host", pools });
    return XenonHost.serve(
      {
        hv,
        machine,
        pools: pools.map((p) => ({ id: p.id, name: p.name })),
        domains: [],
        ...(opts.console !== undefined ? { console: opts.console } : {}),
      },
      opts,
    );
  }

  /** Serves a system built elsewhere; its domains keep running and become visible to xl. */
  static async serve(sys: AdoptedSystem, opts: Omit<HostOptions, "pools"> = {}): Promise<XenonHost> {
    const { hv, machine } = sys;
    const dom0 = hv.domains.create({
      domid: CONTROL_DOMID,
      name: "Domain-0",
      maxVcpus: 1,
      maxPages: 0,
      p2mPoolPages: p2mPoolPagesFor(1),
      flags: { privileged: true },
    });
    if (typeof dom0 === "number") throw new Error(`cannot create Domain-0 (${dom0})`);
    dom0.unpause();
    let tmpDir: string | null = null;
    let sock = opts.xenstoreSocket;
    if (sock === undefined) {
      tmpDir = mkdtempSync(join(tmpdir(), "xenon-host-"));
      sock = join(tmpDir, "xenstored.sock");
    }
    const xs = await XenstoreLink.start(hv, { socketPath: sock });
    // It serves from its own worker from now on (its creation pause is only a count here).
    hv.domains.get(xs.domid)?.unpause();
    const libxl = new Libxl({
      hv,
      machine,
      pools: sys.pools,
      controlDomid: CONTROL_DOMID,
      xenstore: xs,
      ...(sys.console !== undefined ? { consoleTee: sys.console } : {}),
    });
    libxl.adopt(CONTROL_DOMID, "Domain-0");
    libxl.adopt(xs.domid, "Xenstore");
    for (const d of sys.domains) {
      const print = sys.console;
      libxl.adopt(d.domid, d.name, print === undefined ? undefined : (bytes) => print(d.name, bytes));
    }
    try {
      for (const d of sys.domains) await xs.introduce(hv.domains.get(d.domid)!, d.name);
    } catch (e) {
      await xs.close();
      throw e;
    }
    let mgmt: MgmtServer;
    try {
      mgmt = await MgmtServer.start(libxl, {
        ...(opts.listenHost !== undefined ? { host: opts.listenHost } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
      });
    } catch (e) {
      await xs.close();
      throw e;
    }
    machine.start();
    hv.log("toolstack: host up");
    return new XenonHost(libxl, machine, mgmt, xs, sock, tmpDir, sys.close);
  }

  /** Stops serving, stops every pCPU, and removes what the host created. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mgmt.close();
    await this.machine.close();
    await this.closeAdopted?.();
    await this.xenstore.close();
    if (this.tmpDir !== null) rmSync(this.tmpDir, { recursive: true, force: true });
  }
}
