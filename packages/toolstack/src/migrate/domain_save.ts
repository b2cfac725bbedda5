/**
 * xl save / xl restore as library functions over a running Machine: pause the domain, wait until
 * it is off every pCPU, write xl header + libxl stream + the hypervisor's stream, then destroy it
 * (or unpause it: `keepRunning`, xl save -c). Restore reads the same bytes into a new domain,
 * puts it under the machine paused, and unpauses it once the stream is complete.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import {
  checkSaveable,
  type Domain,
  type Machine,
  MigrationStreamError,
  NR_VIRQS,
  pauseDomain,
  type RestoredDomain,
  StreamRestore,
  type StreamSink,
  StreamWriter,
  saveDomain,
  unpauseDomain,
} from "@xenon/hypervisor";
import {
  awaitDeviceModels,
  type DeviceModelSource,
  type DeviceModelTarget,
  type EmulatorState,
} from "./device_models.js";
import {
  encodeEmulatorContext,
  encodeLibxlHeader,
  encodeLibxlRecord,
  encodeXlHeader,
  LibxlRec,
  OuterReader,
} from "./save_file.js";

export interface SaveImageOptions {
  /** xl save -c: the domain runs on after the save (default: it is destroyed). */
  readonly keepRunning?: boolean;
  /** Written without the xl header (a live-migration stream is a bare libxl stream). */
  readonly bare?: boolean;
  /** The domain's device models: their state is saved with it (EMULATOR_CONTEXT records). */
  readonly deviceModels?: DeviceModelSource;
}

export interface SaveResult {
  readonly bytes: number;
  readonly pages: number;
  /** How long the domain was paused (ms). */
  readonly pausedMs: number;
}

/** What the xl header's config records about the domain (xl keeps its whole config there). */
export interface SavedConfig {
  readonly name: string;
  readonly pool: number;
}

/** XEN_DOMCTL_destroydomain from the toolstack, retried while a vCPU is still mid-slice. */
export async function destroyDomainNow(machine: Machine, domid: number): Promise<void> {
  const hv = machine.hv;
  const pre = await machine.retry(() => hv.control?.domainDestroying?.(domid) ?? 0);
  if (pre < 0) throw new Error(`domain ${domid}: cannot destroy (${pre})`);
  const d = hv.domains.get(domid);
  for (let v = 0; v < NR_VIRQS; v++)
    if (d !== undefined && hv.globalVirqHandler(v) === d) hv.setGlobalVirqHandler(v, -1);
  hv.domains.destroy(domid);
  hv.control?.domainDestroyed(domid);
}

/** Saves a running domain into `sink` (xl save semantics). */
export async function saveDomainImage(
  machine: Machine,
  domid: number,
  sink: StreamSink,
  opts: SaveImageOptions = {},
): Promise<SaveResult> {
  const hv = machine.hv;
  const d = hv.domains.getLive(domid);
  if (d === undefined) throw new Error(`no domain ${domid}`);
  const saveOpts = { deviceModelsMove: opts.deviceModels !== undefined };
  checkSaveable(hv, d, saveOpts);
  const t0 = performance.now();
  const rc = pauseDomain(hv, d);
  if (rc < 0) throw new Error(`domain ${domid}: cannot pause (${rc})`);
  let ok = false;
  try {
    if (!(await machine.descheduled(domid))) throw new Error(`domain ${domid}: vCPUs did not leave the pCPUs`);
    if (opts.deviceModels !== undefined) await awaitDeviceModels(hv, domid);
    // Checked again paused: nothing can change under the saver now.
    checkSaveable(hv, d, saveOpts);
    const emulators = (await opts.deviceModels?.save(domid)) ?? [];
    const config: SavedConfig = { name: d.name, pool: poolOf(machine, domid) };
    let bytes = 0;
    const out: StreamSink = (c) => {
      bytes += c.length;
      sink(c);
    };
    if (!opts.bare) out(encodeXlHeader(JSON.stringify(config)));
    out(encodeLibxlHeader());
    out(encodeLibxlRecord(LibxlRec.LIBXC_CONTEXT));
    const w = new StreamWriter(out);
    const r = saveDomain(
      w,
      hv,
      d,
      { vcpuState: (v) => machine.vcpuState(domid, v), now: () => machine.now() },
      saveOpts,
    );
    for (const e of emulators) out(encodeEmulatorContext(e.id, e.index, e.data));
    out(encodeLibxlRecord(LibxlRec.END));
    ok = true;
    if (!opts.keepRunning) {
      await opts.deviceModels?.release(domid);
      await destroyDomainNow(machine, domid);
    }
    return { bytes, pages: r.pages, pausedMs: performance.now() - t0 };
  } finally {
    if (!ok || opts.keepRunning) unpauseDomain(hv, d);
  }
}

function poolOf(machine: Machine, domid: number): number {
  const p = machine.hv.control?.domainPool(domid);
  return typeof p === "object" ? p.poolId : 0;
}

export async function saveDomainToFile(
  machine: Machine,
  domid: number,
  path: string,
  opts: SaveImageOptions = {},
): Promise<SaveResult> {
  const fd = openSync(path, "w", 0o600);
  try {
    return await saveDomainImage(machine, domid, (c) => writeSync(fd, c), opts);
  } finally {
    closeSync(fd);
  }
}

export interface RestoreImageOptions {
  /** Name of the new domain (default: the saved one). */
  readonly name?: string;
  /** cpupool (default: the saved one if it exists here, else 0). */
  readonly pool?: number;
  /** Leave it paused (xl restore -p). */
  readonly paused?: boolean;
  /** Where its console output goes. */
  readonly console?: (bytes: Uint8Array) => void;
  /** Bare libxl stream (no xl header): a live migration's. */
  readonly bare?: boolean;
  /**
   * Starts the domain's device models from their saved state (completeAsync). A stream with
   * EMULATOR_CONTEXT records cannot be restored without it.
   */
  readonly deviceModels?: DeviceModelTarget;
}

export interface RestoreResult {
  readonly domid: number;
  readonly domain: Domain;
  readonly config: SavedConfig | null;
  readonly pages: number;
}

/**
 * Restores from bytes fed in any split (a file, a socket). complete() puts the domain under the
 * machine and unpauses it; any error destroys what was built and leaves the host as it was.
 */
export class ImageRestore {
  private readonly outer: OuterReader;
  private inner: StreamRestore | null = null;
  private restored: RestoredDomain | null = null;
  private config: SavedConfig | null = null;
  private readonly emulators: EmulatorState[] = [];

  constructor(
    private readonly machine: Machine,
    private readonly opts: RestoreImageOptions = {},
  ) {
    this.outer = new OuterReader(!opts.bare);
  }

  push(chunk: Uint8Array): void {
    try {
      if (this.inner !== null && !this.inner.done) {
        this.feedInner(chunk);
        return;
      }
      this.handle(this.outer.push(chunk));
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  private handle(items: ReturnType<OuterReader["push"]>): void {
    for (const item of items) {
      if (item.kind === "config") this.config = parseConfig(item.json);
      else if (item.kind === "emulator") {
        if (this.opts.deviceModels === undefined)
          throw new MigrationStreamError(
            `the domain has a device model (EMULATOR_CONTEXT id 0x${item.id.toString(16)}) and this restore cannot start one`,
          );
        this.emulators.push({ id: item.id, index: item.index, data: item.data });
      } else if (item.kind === "libxc") {
        if (this.inner !== null) throw new MigrationStreamError("a second LIBXC_CONTEXT record");
        const name = this.opts.name ?? this.config?.name ?? "restored";
        this.inner = new StreamRestore(this.machine.hv, { name }, true);
        this.feedInner(this.outer.takeRest());
      }
    }
  }

  private feedInner(chunk: Uint8Array): void {
    const inner = this.inner!;
    const r = inner.push(chunk);
    if (r !== null && this.restored === null) {
      this.restored = r;
      this.handle(this.outer.resume(inner.takeTrailing()));
    }
  }

  /**
   * The stream is complete: the domain joins the machine paused, its device models start from
   * their saved state, then it runs (unless `paused`). If they cannot start, the domain is
   * destroyed and the error thrown.
   */
  async completeAsync(): Promise<RestoreResult> {
    const r = this.completePaused();
    try {
      await this.opts.deviceModels?.start(r.domid, this.emulators);
    } catch (e) {
      await destroyDomainNow(this.machine, r.domid).catch(() => {});
      throw e;
    }
    if (!this.opts.paused) unpauseDomain(this.machine.hv, r.domain);
    return r;
  }

  /** The stream is complete: the domain joins the machine (and runs unless `paused`). */
  complete(): RestoreResult {
    if (this.emulators.length > 0)
      throw new MigrationStreamError("the domain has device models: restore it with completeAsync()");
    const r = this.completePaused();
    if (!this.opts.paused) unpauseDomain(this.machine.hv, r.domain);
    return r;
  }

  private completePaused(): RestoreResult {
    try {
      this.outer.finish();
      if (this.restored === null) throw new MigrationStreamError("the save stream has no domain in it");
    } catch (e) {
      this.abort();
      throw e;
    }
    const r = this.restored!;
    const d = r.domain;
    const want = this.opts.pool ?? this.config?.pool ?? 0;
    const pool = this.machine.cpupools.pool(want) === undefined ? 0 : want;
    if (this.opts.console) d.console.setSink(this.opts.console);
    try {
      this.machine.addRestoredDomain(d, pool, r.vcpuStates);
    } catch (e) {
      this.machine.hv.domains.destroy(d.domid);
      throw e;
    }
    return { domid: d.domid, domain: d, config: this.config, pages: r.pages };
  }

  abort(): void {
    this.inner?.abort();
  }
}

function parseConfig(json: string): SavedConfig {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new MigrationStreamError("save file config is not valid JSON");
  }
  const o = v as Partial<SavedConfig> | null;
  if (o === null || typeof o !== "object" || typeof o.name !== "string" || !Number.isInteger(o.pool))
    throw new MigrationStreamError("save file config lacks a name and pool");
  return { name: o.name, pool: o.pool! };
}

/** xl restore FILE (a domain with no device models). */
export function restoreDomainFromFile(machine: Machine, path: string, opts: RestoreImageOptions = {}): RestoreResult {
  const r = new ImageRestore(machine, opts);
  r.push(readFileSync(path));
  return r.complete();
}

/** xl restore FILE, starting the domain's device models (opts.deviceModels) before it runs. */
export async function restoreDomainFromFileAsync(
  machine: Machine,
  path: string,
  opts: RestoreImageOptions = {},
): Promise<RestoreResult> {
  const r = new ImageRestore(machine, opts);
  r.push(readFileSync(path));
  return await r.completeAsync();
}

/**
 * The destination of a live migration in the same process: an ImageRestore on `machine` fed the
 * bare libxl stream; commit() puts the domain under the machine and unpauses it.
 */
export function localMigrationTarget(
  machine: Machine,
  opts: Omit<RestoreImageOptions, "bare"> = {},
): { readonly target: { send: StreamSink; commit(): Promise<void>; abort(): void }; result(): RestoreResult | null } {
  const r = new ImageRestore(machine, { ...opts, bare: true });
  let done: RestoreResult | null = null;
  let failed: unknown = null;
  return {
    target: {
      send: (c) => {
        if (failed !== null) return;
        try {
          r.push(c);
        } catch (e) {
          failed = e;
        }
      },
      commit: async () => {
        if (failed !== null) throw failed;
        done = await r.completeAsync();
      },
      abort: () => r.abort(),
    },
    result: () => done,
  };
}
