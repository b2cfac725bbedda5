/**
 * A running host for `xl` (`xenon host`, `xenon boot --serve`): the core and its Machine, a
 * Domain-0 that the toolstack acts as (a privileged TypeScript domain, like Xen's control
 * domain, with no guest code), the libxl API over them, the management endpoint, and XenStore on
 * a Unix socket with every domain introduced by name.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type VifSwitch, VirtualSwitch } from "@xenon/backends";
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
import { POOL_LINK_PATH, PoolAgent } from "../pool/agent.js";
import { joinPoolNetwork } from "../pool/l2.js";
import type { PoolLink } from "../pool/link.js";
import { poolOps } from "../pool/mgmt_ops.js";
import { MIGRATION_OPS, PoolMigrations } from "../pool/migration.js";
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
  /** Membership of a pool of hosts (`--pool-secret-file`, `--join`). */
  readonly pool?: HostPoolOptions;
}

export interface HostPoolOptions {
  readonly secret: Uint8Array;
  /** This host's name in the pool (default: "host-<port>"). */
  readonly name?: string;
  /** A member to join through (HOST:PORT or ws://HOST:PORT); absent: a pool of one, for now. */
  readonly join?: string;
  readonly heartbeatMs?: number;
  /** Where pool events are logged besides the hypervisor's log (default: stderr). */
  readonly log?: (line: string) => void;
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
  /**
   * Starts what came with the system and uses XenStore (its driver domains: their devices' nodes
   * and connections), once XenStore is up and before the system's domains are introduced.
   */
  readonly start?: (xenstore: XenstoreLink) => Promise<void>;
  /** The XenStore domain's domid (default: the next free one); keep it off domids still to come. */
  readonly xenstoreDomid?: number;
  /** The switch its driver domains' vifs are on (default: a new xenbr0). */
  readonly vswitch?: VifSwitch;
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
    /** Pool membership; null when the host was started without a pool secret. */
    readonly pool: PoolAgent | null,
    readonly migrations: PoolMigrations | null,
    private readonly closeAdopted?: () => Promise<void>,
  ) {}

  /** The management URL with its token: what xl needs (printed as XENON_HOST). */
  get url(): string {
    return this.mgmt.clientUrl;
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
    const poolRef: { agent: PoolAgent | null; migrations: PoolMigrations | null } = { agent: null, migrations: null };
    const { hv, machine } = sys;
    // A boot tree with dom0 ends has made Domain-0 already (privileged, no vCPU): adopt it.
    const made = hv.domains.get(CONTROL_DOMID);
    const dom0 =
      made ??
      hv.domains.create({
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
    const xs = await XenstoreLink.start(hv, {
      socketPath: sock,
      ...(sys.xenstoreDomid !== undefined ? { domid: sys.xenstoreDomid } : {}),
    });
    // It serves from its own worker from now on (its creation pause is only a count here).
    hv.domains.get(xs.domid)?.unpause();
    try {
      await sys.start?.(xs);
    } catch (e) {
      await xs.close();
      if (tmpDir !== null) rmSync(tmpDir, { recursive: true, force: true });
      throw e;
    }
    // One switch per host: xl-created guests' vifs join the booted ones'.
    const vswitch = sys.vswitch ?? new VirtualSwitch({});
    const libxl = new Libxl({
      vswitch,
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
        extraOps: poolOps(libxl, poolRef),
        paths: {
          [POOL_LINK_PATH]: (ws, remote) => {
            if (poolRef.agent !== null) poolRef.agent.accept(ws, remote);
            else {
              hv.log(`pool: refused a link from ${remote}: this host is in no pool`);
              ws.close(4001, "this host is in no pool");
            }
          },
        },
      });
    } catch (e) {
      await xs.close();
      throw e;
    }
    if (opts.pool !== undefined) {
      const po = opts.pool;
      const print = po.log ?? ((line: string) => process.stderr.write(`xenon: ${line}\n`));
      const log = (line: string) => {
        hv.log(line);
        print(line);
      };
      const port = new URL(mgmt.url).port;
      const agent = new PoolAgent({
        name: po.name ?? `host-${port}`,
        url: mgmt.url,
        secret: po.secret,
        ...(po.heartbeatMs !== undefined ? { heartbeatMs: po.heartbeatMs } : {}),
        log,
        ops: {
          "domain.list": () => libxl.list(),
          "host.info": () => libxl.info(),
          ...Object.fromEntries(
            Object.entries(MIGRATION_OPS).map(([op, f]) => [
              op,
              (link: PoolLink, a: Readonly<Record<string, unknown>>) => f(poolRef.migrations!, link, a),
            ]),
          ),
        },
        data: (link, mig, bytes) => poolRef.migrations?.data(link, mig, bytes),
        frame: (link, frame) => l2.frame(link, frame),
      });
      // The hosts' switches form one L2 network over the links (pool/l2.ts).
      const l2 = joinPoolNetwork(agent, vswitch, log);
      poolRef.agent = agent;
      poolRef.migrations = new PoolMigrations(libxl, machine, agent, log);
      if (po.join !== undefined) {
        try {
          await agent.join(po.join);
        } catch (e) {
          agent.close();
          await mgmt.close();
          await xs.close();
          await machine.close();
          await sys.close?.();
          if (tmpDir !== null) rmSync(tmpDir, { recursive: true, force: true });
          throw e;
        }
      }
    }
    machine.start();
    hv.log("toolstack: host up");
    return new XenonHost(libxl, machine, mgmt, xs, sock, tmpDir, poolRef.agent, poolRef.migrations, sys.close);
  }

  /** Stops serving, stops every pCPU, and removes what the host created. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool?.close();
    await this.mgmt.close();
    await this.machine.close();
    await this.closeAdopted?.();
    await this.xenstore.close();
    if (this.tmpDir !== null) rmSync(this.tmpDir, { recursive: true, force: true });
  }
}
