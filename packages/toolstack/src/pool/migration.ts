/**
 * Live migration over a pool link (xl migrate DOMAIN HOST). The source runs the pre-copy loop
 * (migrateDomain) with a MigrationTarget whose bytes go out as `data` messages between a
 * `mig.begin` and a `mig.commit` request; the destination feeds them to an ImageRestore and, on
 * commit, puts the domain under its machine, tracks it, unpauses it and only then answers. The
 * source destroys its copy only after that answer; a lost link, a refusal or a destination that
 * dies at any point before it leaves the source's domain running (migrateDomain unpauses it), and
 * the destination drops whatever it had built.
 */

import type { DriverDomain } from "@xenon/backends";
import type { Machine } from "@xenon/hypervisor";
import { LibxlError } from "../libxl/errors.js";
import type { Libxl } from "../libxl/libxl.js";
import type { DomainConfig } from "../libxl/types.js";
import { ImageRestore } from "../migrate/domain_save.js";
import { type MigrateStats, type MigrationTarget, migrateDomain } from "../migrate/live_migrate.js";
import type { PoolAgent } from "./agent.js";
import type { PoolLink } from "./link.js";

/** Stream bytes per data message: big enough to amortise framing, well under the frame limit. */
const DATA_CHUNK = 512 * 1024;
/** The sender waits while more than this is queued on the socket (flow control). */
const MAX_QUEUED = 8 << 20;
/** How long the destination may take to restore and start the domain after the last byte. */
const COMMIT_TIMEOUT_MS = 30_000;

export interface MigrateProgress {
  readonly round: number;
  /** Pages sent so far, and pages found dirty after this round. */
  readonly pages: number;
  readonly dirty: number;
  readonly mbytes: number;
  readonly mbps: number;
}

export interface MigrateOptions {
  readonly progress?: (p: MigrateProgress) => void;
  /** Test hook: cut the link (no goodbye) once this many stream bytes were sent. */
  readonly testCutAfterBytes?: number;
  /** Test hook: wait this long after every batch of pages (a slow link). */
  readonly testBatchDelayMs?: number;
  readonly maxRounds?: number;
  readonly targetDirty?: number;
}

export interface PoolMigrateResult extends MigrateStats {
  readonly host: string;
  /** The domain's id on the destination. */
  readonly domid: number;
}

interface Incoming {
  readonly link: PoolLink;
  readonly name: string;
  readonly config: DomainConfig | undefined;
  readonly restore: ImageRestore;
  /** Driver domains started for its devices (handed to the record once it runs). */
  readonly started: DriverDomain[];
  failed: Error | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function u32(a: Readonly<Record<string, unknown>>, k: string): number {
  const v = a[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new LibxlError("EINVAL", `argument '${k}' must be a u32`);
  return v;
}

type LinkArgs = Readonly<Record<string, unknown>>;

/** The destination's ops on the pool link. */
export const MIGRATION_OPS: Readonly<Record<string, (m: PoolMigrations, link: PoolLink, a: LinkArgs) => unknown>> = {
  "mig.begin": (m, link, a) => m.begin(link, a),
  "mig.commit": (m, link, a) => m.commit(link, a),
  "mig.abort": (m, link, a) => m.abortIncoming(link, a),
  // Answered once every data message before it was restored (the link handles messages in order).
  "mig.sync": (m, link, a) => m.sync(link, a),
};

export class PoolMigrations {
  private nextMig = 1;
  private readonly incoming = new Map<string, Incoming>();

  constructor(
    private readonly lx: Libxl,
    private readonly machine: Machine,
    private readonly agent: PoolAgent,
    private readonly log: (line: string) => void,
  ) {
    agent.onLinkClosed((link) => {
      for (const [key, m] of [...this.incoming])
        if (m.link === link) {
          this.incoming.delete(key);
          m.restore.abort();
          this.log(`pool: migration of ${m.name} from ${link.peer} abandoned: the link went down`);
        }
    });
  }

  /** A migration from a member begins: `name` will arrive as stream data (the `data` messages). */
  begin(link: PoolLink, a: Readonly<Record<string, unknown>>): null {
    const mig = u32(a, "mig");
    const name = a.name;
    if (typeof name !== "string" || name === "") throw new LibxlError("EINVAL", "argument 'name' must be a string");
    const key = `${link.peer}/${mig}`;
    if (this.incoming.has(key)) throw new LibxlError("EEXIST", `migration ${mig} is already open`);
    if (this.lx.list().some((d) => d.name === name) || [...this.incoming.values()].some((m) => m.name === name))
      throw new LibxlError("EEXIST", `domain '${name}' already exists on ${this.agent.name}`);
    const poolName = typeof a.pool === "string" ? a.pool : "";
    const pool = this.lx.cpupoolList().find((p) => p.name === poolName)?.poolId ?? 0;
    const config = typeof a.config === "object" && a.config !== null ? (a.config as DomainConfig) : undefined;
    const started: DriverDomain[] = [];
    const restore = new ImageRestore(this.machine, {
      bare: true,
      name,
      paused: true,
      pool,
      deviceModels: this.lx.deviceModelTarget(started),
    });
    this.incoming.set(key, { link, name, config, restore, started, failed: null });
    this.log(`pool: receiving domain ${name} from ${link.peer}`);
    return null;
  }

  /** The stream is complete: the domain joins this machine and runs; its id goes back. */
  async commit(link: PoolLink, a: Readonly<Record<string, unknown>>): Promise<{ domid: number }> {
    const key = `${link.peer}/${u32(a, "mig")}`;
    const m = this.incoming.get(key);
    if (m === undefined) throw new LibxlError("ENOENT", "no such migration");
    this.incoming.delete(key);
    if (m.failed !== null) throw new LibxlError("EPROTO", `the stream was refused: ${m.failed.message}`);
    // Its device models start (from their saved state) before it runs; if they cannot, the
    // domain is destroyed here and the source keeps it.
    const r = await m.restore.completeAsync().catch((e: unknown) => {
      throw new LibxlError("EIO", `the domain's device models did not start: ${(e as Error).message}`);
    });
    this.lx.adoptRestored(r.domid, m.name, m.config, m.started);
    this.lx.unpause(r.domid);
    this.log(`pool: domain ${m.name} arrived from ${link.peer} as domain ${r.domid}, running`);
    return { domid: r.domid };
  }

  /** The sender waits for this answer before it pauses the domain: all data before it is in. */
  sync(link: PoolLink, a: Readonly<Record<string, unknown>>): null {
    const m = this.incoming.get(`${link.peer}/${u32(a, "mig")}`);
    if (m === undefined) throw new LibxlError("ENOENT", "no such migration");
    if (m.failed !== null) throw new LibxlError("EPROTO", `the stream was refused: ${m.failed.message}`);
    return null;
  }

  /** The sender gave up: drop what arrived. */
  abortIncoming(link: PoolLink, a: Readonly<Record<string, unknown>>): null {
    const key = `${link.peer}/${u32(a, "mig")}`;
    const m = this.incoming.get(key);
    if (m === undefined) return null;
    this.incoming.delete(key);
    m.restore.abort();
    this.log(`pool: migration of ${m.name} from ${link.peer} aborted by the sender`);
    return null;
  }

  /** Migration bytes from a member. */
  data(link: PoolLink, mig: number, bytes: Uint8Array): void {
    const m = this.incoming.get(`${link.peer}/${mig}`);
    if (m === undefined || m.failed !== null) return;
    try {
      m.restore.push(bytes);
    } catch (e) {
      // Answered at commit; the sender then resumes its domain.
      m.failed = e as Error;
      this.log(`pool: migration of ${m.name} from ${link.peer}: bad stream: ${m.failed.message}`);
    }
  }

  /** The source side: migrates a running domain of this host to member `host`. */
  async migrate(dom: string | number, host: string, opts: MigrateOptions = {}): Promise<PoolMigrateResult> {
    if (this.agent.isSelf(host)) throw new LibxlError("EINVAL", "the destination is this host");
    const domid = this.lx.domid(dom);
    if (domid === this.lx.ctx.self) throw new LibxlError("EINVAL", "cannot migrate the control domain");
    const link = this.agent.link(host);
    const rec = this.lx.ctx.domains.get(domid);
    const name = this.lx.ctx.nameOf(domid);
    const poolId = this.machine.hv.control?.domainPool(domid);
    const pool = typeof poolId === "object" ? (this.lx.ctx.poolNames.get(poolId.poolId) ?? "") : "";
    const mig = this.nextMig++;
    await link.request("mig.begin", { mig, name, pool, ...(rec?.config !== undefined ? { config: rec.config } : {}) });
    this.log(`pool: migrating domain ${name} (${domid}) to ${link.peer}`);
    let queued: Uint8Array[] = [];
    let queuedBytes = 0;
    let streamBytes = 0;
    const sendData = (data: Uint8Array) => {
      for (let off = 0; off < data.length; off += DATA_CHUNK)
        if (!link.send({ t: "data", mig, data: data.subarray(off, off + DATA_CHUNK) }))
          throw new LibxlError("ECONNRESET", `the link to ${link.peer} is down`);
    };
    // Small records (headers, state) are gathered into one message; page batches go as they are.
    const flush = () => {
      if (queuedBytes === 0) return;
      const all = queued.length === 1 ? queued[0]! : Buffer.concat(queued);
      queued = [];
      queuedBytes = 0;
      sendData(all);
    };
    const cut = opts.testCutAfterBytes;
    let moved: { domid: number } | null = null;
    const target: MigrationTarget = {
      send: (c) => {
        if (!link.open) throw new LibxlError("ECONNRESET", `the link to ${link.peer} is down`);
        streamBytes += c.length;
        if (cut !== undefined && streamBytes >= cut) {
          link.terminate("test hook: link cut mid-migration");
          throw new LibxlError("ECONNRESET", `the link to ${link.peer} was cut (test hook)`);
        }
        // Every chunk the stream writer hands over is a fresh buffer: no copy is kept.
        if (c.length >= DATA_CHUNK) {
          flush();
          sendData(c);
          return;
        }
        queued.push(c);
        queuedBytes += c.length;
        if (queuedBytes >= DATA_CHUNK) flush();
      },
      drain: async () => {
        flush();
        while (link.open && link.buffered > MAX_QUEUED) await sleep(1);
        if (opts.testBatchDelayMs !== undefined) await sleep(opts.testBatchDelayMs);
        if (!link.open) throw new LibxlError("ECONNRESET", `the link to ${link.peer} is down`);
      },
      settle: async () => {
        flush();
        await link.request("mig.sync", { mig }, COMMIT_TIMEOUT_MS);
      },
      commit: async () => {
        flush();
        moved = await link.request<{ domid: number }>("mig.commit", { mig }, COMMIT_TIMEOUT_MS);
      },
      abort: () => {
        link.request("mig.abort", { mig }).catch(() => undefined);
      },
    };
    const t0 = performance.now();
    const stats = await migrateDomain(this.machine, domid, target, {
      deviceModels: this.lx.deviceModelSource(),
      ...(opts.maxRounds !== undefined ? { maxRounds: opts.maxRounds } : {}),
      ...(opts.targetDirty !== undefined ? { targetDirty: opts.targetDirty } : {}),
      progress: (p) => {
        const s = (performance.now() - t0) / 1000;
        const mbytes = streamBytes / 1e6;
        opts.progress?.({ round: p.round, pages: p.sent, dirty: p.dirty, mbytes, mbps: s > 0 ? mbytes / s : 0 });
      },
    }).catch((e: unknown) => {
      this.log(`pool: migration of ${name} to ${link.peer} failed, it runs on here: ${(e as Error).message}`);
      throw e instanceof LibxlError ? e : new LibxlError("EIO", `migration failed: ${(e as Error).message}`);
    });
    this.log(
      `pool: domain ${name} migrated to ${link.peer} (downtime ${stats.downtimeMs.toFixed(1)} ms, ${stats.pagesSent} pages)`,
    );
    return { ...stats, host: link.peer, domid: (moved as { domid: number } | null)?.domid ?? -1 };
  }
}
