/**
 * Live migration (xl migrate; libxc's pre-copy loop, xen-abi.md §9.5): log-dirty on, every RAM
 * page sent while the guest runs, then rounds of the pages it dirtied meanwhile until few remain
 * or the round limit is reached; then the domain is paused, the last dirty pages and its vCPU,
 * event-channel, grant and shared_info state sent, and the destination unpauses its copy. The
 * source domain is destroyed only after the destination has taken the domain; any failure
 * before that unpauses the source, which runs on as if nothing happened.
 */
import {
  checkSaveable,
  type Domain,
  MAX_BATCH_SIZE,
  type Machine,
  pauseDomain,
  ramGfns,
  type StreamSink,
  StreamWriter,
  unpauseDomain,
  writeDomainState,
  writePages,
  writeStaticData,
} from "@xenon/hypervisor";
import { awaitDeviceModels, type DeviceModelSource } from "./device_models.js";
import { destroyDomainNow } from "./domain_save.js";
import { encodeEmulatorContext, encodeLibxlHeader, encodeLibxlRecord, LibxlRec } from "./save_file.js";

export interface MigratePolicy {
  /** Go to stop-and-copy when a round dirtied fewer pages than this (libxc: 50). */
  readonly targetDirty?: number;
  /** Live rounds after the first full pass at most (default 30; past 5 only while they still shrink the dirty set). */
  readonly maxRounds?: number;
  /** false: no pre-copy — pause first, then send everything (the stop-and-copy baseline). */
  readonly live?: boolean;
  /** Called after each round: pages sent so far, dirty pages found. */
  readonly progress?: (p: { round: number; sent: number; dirty: number }) => void;
  /** The domain's device models (virtio driver domains): their state goes in EMULATOR_CONTEXT. */
  readonly deviceModels?: DeviceModelSource;
}

/** The receiving end as the sender sees it. */
export interface MigrationTarget {
  /** Stream bytes, in order (a bare libxl stream). */
  readonly send: StreamSink;
  /**
   * The stream is complete: the destination takes the domain and runs it. Resolves when it runs;
   * rejects if the destination refused (the source then resumes its domain).
   */
  commit(): Promise<void>;
  /** The migration failed on the sending side: drop what was received. */
  abort(): void;
  /**
   * Called between batches of pages while the guest runs: resolves when the target can take more
   * (a socket's queue drained); rejects to fail the migration (the link is gone).
   */
  drain?(): Promise<void>;
  /**
   * Called just before the pause: resolves once the target has taken in everything sent so far
   * (a socket's receiver has worked through its backlog), so none of that is left for the downtime.
   */
  settle?(): Promise<void>;
}

export interface MigrateStats {
  readonly guestPages: number;
  readonly pagesSent: number;
  readonly bytes: number;
  /** Live rounds after the first full pass. */
  readonly rounds: number;
  readonly dirtyPerRound: readonly number[];
  /** From the source's pause to the destination's unpause (ms). */
  readonly downtimeMs: number;
  readonly totalMs: number;
}

/** Rounds run before "the dirty set stopped shrinking" may end the pre-copy (one slow round is noise). */
const MIN_ROUNDS = 5;

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Migrates a running domain of `machine` to `target`. */
export async function migrateDomain(
  machine: Machine,
  domid: number,
  target: MigrationTarget,
  policy: MigratePolicy = {},
): Promise<MigrateStats> {
  const hv = machine.hv;
  const d = hv.domains.getLive(domid);
  if (d === undefined) throw new Error(`no domain ${domid}`);
  const saveOpts = { deviceModelsMove: policy.deviceModels !== undefined };
  checkSaveable(hv, d, saveOpts);
  const targetDirty = policy.targetDirty ?? 50;
  const maxRounds = policy.maxRounds ?? 30;
  const t0 = performance.now();
  let bytes = 0;
  const out: StreamSink = (c) => {
    bytes += c.length;
    target.send(c);
  };
  const w = new StreamWriter(out);
  let paused = false;
  let pagesSent = 0;
  const dirtyPerRound: number[] = [];
  try {
    out(encodeLibxlHeader());
    out(encodeLibxlRecord(LibxlRec.LIBXC_CONTEXT));
    writeStaticData(w, d);
    const live = policy.live !== false;
    const physmapAt = d.p2m.changeCount;
    const all = ramGfns(d);
    let dirty: number[] = [];
    if (live) {
      await machine.enableLogDirty(domid);
      // Round 0: everything, while the guest runs; later rounds: what it dirtied meanwhile.
      pagesSent += await sendInBatches(w, machine, d, all, target);
      dirty = await machine.logDirtyRound(domid);
      policy.progress?.({ round: 0, sent: pagesSent, dirty: dirty.length });
    }
    let round = 0;
    let prev = Infinity;
    // More rounds while they pay: each sends what the last one dirtied, so the set shrinks until
    // the guest dirties pages as fast as a round takes. Stop when it is small, at the round limit,
    // or, after libxc's 5 rounds, once a round no longer shrinks it by a tenth.
    while (
      live &&
      dirty.length >= targetDirty &&
      round < maxRounds &&
      (round < MIN_ROUNDS || dirty.length < prev * 0.9)
    ) {
      prev = dirty.length;
      round++;
      dirtyPerRound.push(dirty.length);
      pagesSent += await sendInBatches(w, machine, d, dirty, target);
      dirty = await machine.logDirtyRound(domid);
      policy.progress?.({ round, sent: pagesSent, dirty: dirty.length });
    }
    if (live) await target.settle?.();
    // Stop and copy.
    const tPause = performance.now();
    const rc = pauseDomain(hv, d);
    if (rc < 0) throw new Error(`domain ${domid}: cannot pause (${rc})`);
    paused = true;
    // While the vCPUs leave the pCPUs, the last round's pages go out: whatever the guest still
    // writes to them meanwhile is in the dirty log and is sent again below.
    if (live && dirty.length > 0) {
      pagesSent += writePages(w, hv, d, dirty);
      dirtyPerRound.push(dirty.length);
    }
    if (!(await machine.descheduled(domid))) throw new Error(`domain ${domid}: vCPUs did not leave the pCPUs`);
    if (policy.deviceModels !== undefined) await awaitDeviceModels(hv, domid);
    checkSaveable(hv, d, saveOpts);
    // Device models finish the guest's queued work first: what they write to it is sent below.
    const emulators = (await policy.deviceModels?.save(domid)) ?? [];
    const last = new Set(live ? d.p2m.peekAndClean() : []);
    // Written without the vCPU's TLB, so never in the dirty log: vcpu_info blocks (event delivery
    // by the core and the workers) and pages other domains hold through grants or, for devices
    // without grants, writable foreign views (a backend writes them in place: a virtio used ring
    // stays mapped while its queue runs). Sent again, to be safe.
    for (const v of d.vcpus) if (v.placement !== null) last.add(v.placement.gfn);
    for (const a of d.grantTable.active.values()) last.add(a.gfn);
    for (const o of hv.domains.list())
      for (const f of o.foreignViews.values()) if (f.owner === d && f.writable) last.add(f.gfn);
    // Pages the guest gained or gave back during the rounds (not in the dirty log).
    // Both lists ascending: one merge walk, no sets of the whole RAM in the downtime; no walk at all
    // when no entry changed since `all` was taken.
    const unchanged = live && d.p2m.changeCount === physmapAt;
    const now = unchanged ? [] : ramGfns(d);
    const before = live && !unchanged ? all : [];
    let i = 0;
    let j = 0;
    while (i < before.length || j < now.length) {
      const a = i < before.length ? before[i]! : Infinity;
      const b = j < now.length ? now[j]! : Infinity;
      if (a === b) {
        i++;
        j++;
      } else if (a < b) {
        last.add(a);
        i++;
      } else {
        last.add(b);
        j++;
      }
    }
    dirtyPerRound.push(last.size);
    pagesSent += writePages(
      w,
      hv,
      d,
      [...last].sort((a, b) => a - b),
    );
    writeDomainState(w, hv, d, { vcpuState: (v) => machine.vcpuState(domid, v), now: () => machine.now() }, saveOpts);
    for (const e of emulators) out(encodeEmulatorContext(e.id, e.index, e.data));
    out(encodeLibxlRecord(LibxlRec.END));
    await target.commit();
    const downtimeMs = performance.now() - tPause;
    if (live) d.p2m.disableLogDirty();
    await policy.deviceModels?.release(domid);
    await destroyDomainNow(machine, domid);
    return {
      guestPages: all.length,
      pagesSent,
      bytes,
      rounds: round,
      dirtyPerRound,
      downtimeMs,
      totalMs: performance.now() - t0,
    };
  } catch (e) {
    target.abort();
    if (!d.dying) {
      if (d.p2m.logDirtyEnabled) d.p2m.disableLogDirty();
      if (paused) unpauseDomain(hv, d);
    }
    throw e;
  }
}

async function sendInBatches(
  w: StreamWriter,
  machine: Machine,
  d: Domain,
  gfns: readonly number[],
  target: MigrationTarget,
): Promise<number> {
  let n = 0;
  for (let i = 0; i < gfns.length; i += MAX_BATCH_SIZE) {
    n += writePages(w, machine.hv, d, gfns.slice(i, i + MAX_BATCH_SIZE));
    // The core thread serves the running guest's exits between batches.
    await yieldToLoop();
    await target.drain?.();
  }
  return n;
}
