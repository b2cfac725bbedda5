import type { DomctlDomainInfo } from "../control.js";
import type { Domain } from "../domain.js";
import type { GuestMemory } from "../p2m/guest_access.js";
import { err } from "../public/errno.js";
import { EvtchnOp } from "../public/event_channel.js";
import { GNTCOPY_dest_gref, GNTCOPY_source_gref, Gntst, GnttabOp } from "../public/grant_table.js";
import {
  DomidArg,
  decode,
  EvtchnAllocUnbound,
  EvtchnBindInterdomain,
  EvtchnBindIpi,
  EvtchnBindVcpu,
  EvtchnBindVirq,
  EvtchnPort,
  EvtchnReset,
  EvtchnStatus,
  encode,
  fieldSize,
  GnttabCopy,
  GnttabGetVersion,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabSetVersion,
  GnttabUnmapGrantRef,
  SchedPoll,
  SchedRemoteShutdown,
  SchedShutdown,
  type StructLayout,
  type StructValues,
  VCPU_GUEST_CONTEXT_REGS,
  VcpuGuestContext,
  VcpuRegisterVcpuInfo,
  VcpuSetSingleshotTimer,
  writeField,
  XEN_CAPABILITIES_INFO_LEN,
  XEN_CHANGESET_INFO_LEN,
  XEN_COMMANDLINE_LEN,
  XEN_DOMCTL_U_OFFSET,
  XEN_EXTRAVERSION_LEN,
  XEN_PFN_SIZE,
  XEN_SYSCTL_U_OFFSET,
  XenAddToPhysmap,
  XenAddToPhysmapBatch,
  XenDomctl,
  XenDomctlCreatedomain,
  XenDomctlGetdomaininfo,
  XenDomctlGetvcpuinfo,
  XenDomctlMaxMem,
  XenDomctlMaxVcpus,
  XenDomctlSchedparamVcpu,
  XenDomctlSchedulerOp,
  XenDomctlSetVirqHandler,
  XenDomctlVcpuaffinity,
  XenDomctlVcpucontext,
  XenFeatureInfo,
  XenHvmParam,
  XenMemoryReservation,
  XenRemoveFromPhysmap,
  XenSysctl,
  XenSysctlCpupoolOp,
  XenSysctlGetdomaininfolist,
  XenSysctlPhysinfo,
  XenSysctlSchedId,
  XenSysctlSchedulerOp,
} from "../public/layout.js";
import { ADD_TO_PHYSMAP_BATCH_MAX, MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT, XenMem } from "../public/memory.js";
import {
  ConsoleIo,
  CpupoolOp,
  DomctlCmd,
  DomctlSchedOp,
  HvmOp,
  SchedOp,
  SysctlCmd,
  SysctlSchedOp,
  VCPU_SSHOTTMR_FUTURE,
  VcpuAffinity,
  VcpuOp,
  XEN_DOMCTL_INTERFACE_VERSION,
  XEN_DOMCTL_SCHEDRT_EXTRA,
  XEN_SYSCTL_INTERFACE_VERSION,
  XenVer,
} from "../public/xen.js";
import type { PoolParamsUpdate, SchedParamsUpdate } from "../sched/types.js";
import { SCHED_POLL_MAX_PORTS, schedKind, XEN_CAPABILITIES, XEN_CHANGESET } from "./semantics.js";

/**
 * The guest ABI: decodes the argument structs a guest passes by guest-physical address, calls
 * the semantics layer, and writes results back, at the exact offsets of Xen's Arm ABI for a
 * 32-bit guest (public/layout.ts, ABI.md). Every pointer goes through the caller's P2M
 * (GuestMemory), so a bad one is -EFAULT; every number is range-checked downstream. Nothing here
 * throws on guest input.
 */

// --- struct I/O -----------------------------------------------------------------------------------

/** Reads a whole struct, or -EFAULT. */
export function readStruct<F extends string>(
  g: GuestMemory,
  layout: StructLayout<F>,
  gpa: number,
): StructValues<F> | number {
  const bytes = g.copyFromGuest(gpa, layout.size);
  return typeof bytes === "number" ? bytes : decode(layout, bytes);
}

/**
 * Writes the given (OUT) fields of a struct in place, leaving the others as the guest wrote
 * them. The whole struct must be writable guest RAM, else -EFAULT and nothing is written.
 */
export function writeFields<F extends string>(
  g: GuestMemory,
  layout: StructLayout<F>,
  gpa: number,
  values: Partial<StructValues<F>>,
): number {
  if (!g.check(gpa, layout.size, true)) return err("EFAULT");
  for (const key of Object.keys(values) as F[]) {
    const v = values[key];
    if (v === undefined) continue;
    const f = layout.fields[key];
    const b = new Uint8Array(fieldSize(f.type));
    writeField(b, -f.offset, f, v);
    g.copyToGuest(gpa + f.offset, b);
  }
  return 0;
}

/** A XEN_GUEST_HANDLE (u64) as a guest-physical address, or -1 if it cannot be one (>= 4 GiB). */
export function handleToGpa(handle: number): number {
  return Number.isInteger(handle) && handle >= 0 && handle < 2 ** 32 ? handle : -1;
}

/** Writes a u64 that may be Xen's all-ones INVALID_GFN (-1 here). */
function writeU64OrInvalid(g: GuestMemory, gpa: number, v: number): number {
  if (v >= 0) return g.writeU64(gpa, v);
  const rc = g.writeU32(gpa, 0xffffffff);
  return rc < 0 ? rc : g.writeU32(gpa + 4, 0xffffffff);
}

/** Copies a NUL-padded string into a char[len] result buffer. */
function writeCString(g: GuestMemory, gpa: number, s: string, len: number): number {
  const out = new Uint8Array(len);
  out.set(new TextEncoder().encode(s).subarray(0, len - 1));
  return g.copyToGuest(gpa, out);
}

// --- memory_op ------------------------------------------------------------------------------------

/** Extents handled per semantics call; the list is read from guest memory a batch at a time. */
const EXTENT_BATCH = 512;

function reservationOp(d: Domain, op: number, startExtent: number, arg: number): number {
  const sem = d.hv.hypercalls;
  const r = readStruct(d.guest, XenMemoryReservation, arg);
  if (typeof r === "number") return r;
  const list = handleToGpa(r.extent_start);
  if (list < 0) return err("EFAULT");
  let done = startExtent;
  // Like Xen, a continuation past the end just reports where it is.
  while (done < r.nr_extents) {
    const n = Math.min(EXTENT_BATCH, r.nr_extents - done);
    const gpfns: number[] = [];
    for (let i = 0; i < n; i++) {
      const v = d.guest.readU64(list + (done + i) * XEN_PFN_SIZE);
      if (v < 0) break; // unreadable list entry: stop here, as Xen's copy failure does
      gpfns.push(v);
    }
    if (gpfns.length === 0) break;
    const rc =
      op === XenMem.populate_physmap
        ? sem.populatePhysmap(d.domid, r.domid, gpfns, r.extent_order)
        : sem.decreaseReservation(d.domid, r.domid, gpfns, r.extent_order);
    if (rc < 0) return done === startExtent ? rc : done;
    done += rc;
    if (rc < n) break;
  }
  return done;
}

export function memoryOp(d: Domain, cmd: number, arg: number): number {
  const sem = d.hv.hypercalls;
  const op = cmd & MEMOP_CMD_MASK;
  const startExtent = cmd >>> MEMOP_EXTENT_SHIFT;
  switch (op) {
    case XenMem.populate_physmap:
    case XenMem.decrease_reservation:
      return reservationOp(d, op, startExtent, arg);
    case XenMem.current_reservation:
    case XenMem.maximum_reservation: {
      const a = readStruct(d.guest, DomidArg, arg);
      if (typeof a === "number") return a;
      return op === XenMem.current_reservation
        ? sem.currentReservation(d.domid, a.domid)
        : sem.maximumReservation(d.domid, a.domid);
    }
    case XenMem.add_to_physmap: {
      const a = readStruct(d.guest, XenAddToPhysmap, arg);
      if (typeof a === "number") return a;
      return sem.addToPhysmap(d.domid, a.domid, a.space, a.idx, a.gpfn);
    }
    case XenMem.add_to_physmap_batch:
      return addToPhysmapBatch(d, arg);
    case XenMem.remove_from_physmap: {
      const a = readStruct(d.guest, XenRemoveFromPhysmap, arg);
      if (typeof a === "number") return a;
      return sem.removeFromPhysmap(d.domid, a.domid, a.gpfn);
    }
    default:
      return err("ENOSYS");
  }
}

/** XENMEM_add_to_physmap_batch: reads idxs[] and gpfns[], writes errs[]; 0 or -errno for the call. */
function addToPhysmapBatch(d: Domain, arg: number): number {
  const g = d.guest;
  const a = readStruct(g, XenAddToPhysmapBatch, arg);
  if (typeof a === "number") return a;
  const n = a.size;
  if (n > ADD_TO_PHYSMAP_BATCH_MAX) return err("EINVAL");
  // Every array must be readable (errs writable) before anything is mapped.
  const idxBytes = g.copyFromGuest(a.idxs, 8 * n);
  const gpfnBytes = g.copyFromGuest(a.gpfns, 8 * n);
  if (typeof idxBytes === "number") return idxBytes;
  if (typeof gpfnBytes === "number") return gpfnBytes;
  if (!g.check(a.errs, 4 * n, true)) return err("EFAULT");
  const u64s = (b: Uint8Array): number[] => {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const hi = dv.getUint32(8 * i + 4, true);
      // Beyond any gfn: keep it invalid without losing precision.
      out.push(hi === 0 ? dv.getUint32(8 * i, true) : -1);
    }
    return out;
  };
  const res = d.hv.hypercalls.addToPhysmapBatch(
    d.domid,
    a.domid,
    a.space,
    a.foreign_domid,
    u64s(idxBytes),
    u64s(gpfnBytes),
  );
  if (typeof res === "number") return res;
  const errs = new Uint8Array(4 * n);
  const dv = new DataView(errs.buffer);
  res.forEach((rc, i) => {
    dv.setInt32(4 * i, rc, true);
  });
  return g.copyToGuest(a.errs, errs);
}

// --- event_channel_op -----------------------------------------------------------------------------

export function eventChannelOp(d: Domain, cmd: number, arg: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  switch (cmd) {
    case EvtchnOp.alloc_unbound: {
      const a = readStruct(g, EvtchnAllocUnbound, arg);
      if (typeof a === "number") return a;
      const port = sem.evtchnAllocUnbound(d.domid, a.dom, a.remote_dom);
      return port < 0 ? port : writeFields(g, EvtchnAllocUnbound, arg, { port });
    }
    case EvtchnOp.bind_interdomain: {
      const a = readStruct(g, EvtchnBindInterdomain, arg);
      if (typeof a === "number") return a;
      const port = sem.evtchnBindInterdomain(d.domid, a.remote_dom, a.remote_port);
      return port < 0 ? port : writeFields(g, EvtchnBindInterdomain, arg, { local_port: port });
    }
    case EvtchnOp.bind_virq: {
      const a = readStruct(g, EvtchnBindVirq, arg);
      if (typeof a === "number") return a;
      const port = sem.evtchnBindVirq(d.domid, a.virq, a.vcpu);
      return port < 0 ? port : writeFields(g, EvtchnBindVirq, arg, { port });
    }
    case EvtchnOp.bind_ipi: {
      const a = readStruct(g, EvtchnBindIpi, arg);
      if (typeof a === "number") return a;
      const port = sem.evtchnBindIpi(d.domid, a.vcpu);
      return port < 0 ? port : writeFields(g, EvtchnBindIpi, arg, { port });
    }
    case EvtchnOp.close:
    case EvtchnOp.send:
    case EvtchnOp.unmask: {
      const a = readStruct(g, EvtchnPort, arg);
      if (typeof a === "number") return a;
      if (cmd === EvtchnOp.close) return sem.evtchnClose(d.domid, a.port);
      if (cmd === EvtchnOp.send) return sem.evtchnSend(d.domid, a.port);
      return sem.evtchnUnmask(d.domid, a.port);
    }
    case EvtchnOp.status: {
      const a = readStruct(g, EvtchnStatus, arg);
      if (typeof a === "number") return a;
      const s = sem.evtchnStatus(d.domid, a.dom, a.port);
      if (typeof s === "number") return s;
      // The union is written whole (8 bytes) so no stale guest bytes survive in it.
      return writeFields(g, EvtchnStatus, arg, {
        status: s.status,
        vcpu: s.vcpu,
        u_word: s.virq ?? s.dom ?? 0,
        interdomain_port: s.port ?? 0,
      });
    }
    case EvtchnOp.bind_vcpu: {
      const a = readStruct(g, EvtchnBindVcpu, arg);
      if (typeof a === "number") return a;
      return sem.evtchnBindVcpu(d.domid, a.port, a.vcpu);
    }
    case EvtchnOp.reset: {
      const a = readStruct(g, EvtchnReset, arg);
      if (typeof a === "number") return a;
      return sem.evtchnReset(d.domid, a.dom);
    }
    case EvtchnOp.set_priority:
      return err("EOPNOTSUPP");
    default:
      // bind_pirq, init_control, expand_array (FIFO ABI) and unknown ops.
      return err("ENOSYS");
  }
}

// --- grant_table_op -------------------------------------------------------------------------------

export function grantTableOp(d: Domain, cmd: number, uop: number, count: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  // Xen: a count that is negative as an int is -EINVAL.
  if ((count | 0) < 0) return err("EINVAL");
  const single = (): boolean => count === 1;
  switch (cmd) {
    case GnttabOp.map_grant_ref:
      for (let i = 0; i < count; i++) {
        const at = uop + i * GnttabMapGrantRef.size;
        const a = readStruct(g, GnttabMapGrantRef, at);
        if (typeof a === "number") return a;
        const r = sem.gnttabMapGrantRef(d.domid, { hostAddr: a.host_addr, flags: a.flags, ref: a.ref, dom: a.dom });
        const out =
          r.status === Gntst.okay ? { status: r.status, handle: r.handle, dev_bus_addr: 0 } : { status: r.status };
        if (writeFields(g, GnttabMapGrantRef, at, out) < 0) return err("EFAULT");
      }
      return 0;
    case GnttabOp.unmap_grant_ref:
      for (let i = 0; i < count; i++) {
        const at = uop + i * GnttabUnmapGrantRef.size;
        const a = readStruct(g, GnttabUnmapGrantRef, at);
        if (typeof a === "number") return a;
        const status = sem.gnttabUnmapGrantRef(d.domid, {
          hostAddr: a.host_addr,
          devBusAddr: a.dev_bus_addr,
          handle: a.handle,
        });
        if (writeFields(g, GnttabUnmapGrantRef, at, { status }) < 0) return err("EFAULT");
      }
      return 0;
    case GnttabOp.copy:
      for (let i = 0; i < count; i++) {
        const at = uop + i * GnttabCopy.size;
        const a = readStruct(g, GnttabCopy, at);
        if (typeof a === "number") return a;
        const status = sem.gnttabCopy(d.domid, {
          source: {
            refOrGmfn: a.flags & GNTCOPY_source_gref ? a.source_ref : a.source_gmfn,
            domid: a.source_domid,
            offset: a.source_offset,
          },
          dest: {
            refOrGmfn: a.flags & GNTCOPY_dest_gref ? a.dest_ref : a.dest_gmfn,
            domid: a.dest_domid,
            offset: a.dest_offset,
          },
          len: a.len,
          flags: a.flags,
        });
        if (writeFields(g, GnttabCopy, at, { status }) < 0) return err("EFAULT");
      }
      return 0;
    case GnttabOp.setup_table: {
      if (!single()) return err("EINVAL");
      const a = readStruct(g, GnttabSetupTable, uop);
      if (typeof a === "number") return a;
      const r = sem.gnttabSetupTable(d.domid, a.dom, a.nr_frames);
      let status: number = r.status;
      if (status === Gntst.okay) {
        const list = handleToGpa(a.frame_list);
        for (let i = 0; i < r.frames.length; i++) {
          if (list < 0 || writeU64OrInvalid(g, list + i * XEN_PFN_SIZE, r.frames[i]!) < 0) {
            status = Gntst.bad_virt_addr;
            break;
          }
        }
      }
      return writeFields(g, GnttabSetupTable, uop, { status });
    }
    case GnttabOp.query_size: {
      if (!single()) return err("EINVAL");
      const a = readStruct(g, GnttabQuerySize, uop);
      if (typeof a === "number") return a;
      const r = sem.gnttabQuerySize(d.domid, a.dom);
      return writeFields(g, GnttabQuerySize, uop, {
        status: r.status,
        nr_frames: r.nrFrames,
        max_nr_frames: r.maxNrFrames,
      });
    }
    case GnttabOp.set_version: {
      if (!single()) return err("EINVAL");
      const a = readStruct(g, GnttabSetVersion, uop);
      if (typeof a === "number") return a;
      const r = sem.gnttabSetVersion(d.domid, a.version);
      const w = writeFields(g, GnttabSetVersion, uop, { version: r.version });
      return r.rc < 0 ? r.rc : w;
    }
    case GnttabOp.get_version: {
      if (!single()) return err("EINVAL");
      const a = readStruct(g, GnttabGetVersion, uop);
      if (typeof a === "number") return a;
      const v = sem.gnttabGetVersion(d.domid, a.dom);
      return v < 0 ? v : writeFields(g, GnttabGetVersion, uop, { version: v });
    }
    default:
      // dump_table, transfer (PV), unmap_and_replace, get_status_frames (v2), swap_grant_ref,
      // cache_flush and unknown ops.
      return err("ENOSYS");
  }
}

// --- sched_op -------------------------------------------------------------------------------------

export function schedOp(d: Domain, vcpu: number, cmd: number, arg: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  switch (cmd) {
    case SchedOp.yield:
      return sem.schedYield(d.domid, vcpu);
    case SchedOp.block:
      return sem.schedBlock(d.domid, vcpu);
    case SchedOp.shutdown:
    case SchedOp.shutdown_code: {
      const a = readStruct(g, SchedShutdown, arg);
      if (typeof a === "number") return a;
      return cmd === SchedOp.shutdown ? sem.schedShutdown(d.domid, a.reason) : sem.schedShutdownCode(d.domid, a.reason);
    }
    case SchedOp.poll: {
      const a = readStruct(g, SchedPoll, arg);
      if (typeof a === "number") return a;
      if (a.nr_ports > SCHED_POLL_MAX_PORTS) return err("EINVAL");
      const list = handleToGpa(a.ports);
      if (list < 0) return err("EFAULT");
      const ports: number[] = [];
      for (let i = 0; i < a.nr_ports; i++) {
        const p = g.readU32(list + i * 4);
        if (p < 0) return p;
        ports.push(p);
      }
      return sem.schedPoll(d.domid, vcpu, ports, a.timeout);
    }
    case SchedOp.remote_shutdown: {
      const a = readStruct(g, SchedRemoteShutdown, arg);
      if (typeof a === "number") return a;
      return sem.schedRemoteShutdown(d.domid, a.domain_id, a.reason);
    }
    default:
      // watchdog and pin_override are not modelled.
      return err("ENOSYS");
  }
}

// --- console_io -----------------------------------------------------------------------------------

/** Console bytes are copied in at most this many bytes at a time. */
const CONSOLE_CHUNK = 4096;

export function consoleIo(d: Domain, cmd: number, count: number, buf: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  switch (cmd) {
    case ConsoleIo.write: {
      if (!d.flags.privileged && !d.flags.isConsole) return err("EPERM");
      for (let done = 0; done < count; done += CONSOLE_CHUNK) {
        const bytes = g.copyFromGuest(buf + done, Math.min(CONSOLE_CHUNK, count - done));
        if (typeof bytes === "number") return bytes;
        const rc = sem.consoleWrite(d.domid, bytes);
        if (rc < 0) return rc;
      }
      return 0;
    }
    case ConsoleIo.read: {
      if (!g.check(buf, Math.min(count, CONSOLE_CHUNK * 16), true)) return err("EFAULT");
      const bytes = sem.consoleRead(d.domid, Math.min(count, CONSOLE_CHUNK * 16));
      if (typeof bytes === "number") return bytes;
      const rc = g.copyToGuest(buf, bytes);
      return rc < 0 ? rc : bytes.length;
    }
    default:
      return err("ENOSYS");
  }
}

// --- xen_version ----------------------------------------------------------------------------------

export function xenVersion(d: Domain, cmd: number, arg: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  switch (cmd) {
    case XenVer.version:
      return sem.xenVersion();
    case XenVer.extraversion:
      return writeCString(g, arg, sem.xenExtraversion(), XEN_EXTRAVERSION_LEN);
    case XenVer.capabilities:
      return writeCString(g, arg, XEN_CAPABILITIES, XEN_CAPABILITIES_INFO_LEN);
    case XenVer.changeset:
      return writeCString(g, arg, XEN_CHANGESET, XEN_CHANGESET_INFO_LEN);
    case XenVer.get_features: {
      const a = readStruct(g, XenFeatureInfo, arg);
      if (typeof a === "number") return a;
      const bits = sem.xenFeatures(d.domid, a.submap_idx);
      return bits < 0 ? bits : writeFields(g, XenFeatureInfo, arg, { submap: bits });
    }
    case XenVer.pagesize:
      return 4096;
    case XenVer.commandline: {
      const line = sem.xenCommandline(d.domid);
      return typeof line === "number" ? line : writeCString(g, arg, line, XEN_COMMANDLINE_LEN);
    }
    default:
      return err("ENOSYS");
  }
}

// --- vcpu_op / hvm_op -----------------------------------------------------------------------------

export function vcpuOp(d: Domain, cmd: number, vcpuId: number, arg: number): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  const sem = d.hv.hypercalls;
  switch (cmd) {
    case VcpuOp.is_up:
      return sem.vcpuIsUp(d.domid, vcpuId);
    case VcpuOp.up:
    case VcpuOp.down:
      return sem.vcpuSetOnline(d.domid, vcpuId, cmd === VcpuOp.up);
    case VcpuOp.initialise: {
      const bytes = d.guest.copyFromGuest(arg, VcpuGuestContext.size);
      if (typeof bytes === "number") return bytes;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const regs = new Int32Array(VCPU_GUEST_CONTEXT_REGS);
      for (let i = 1; i < VCPU_GUEST_CONTEXT_REGS; i++)
        regs[i] = dv.getInt32(VcpuGuestContext.fields.x.offset + 4 * i, true);
      const c = {
        flags: dv.getUint32(VcpuGuestContext.fields.flags.offset, true),
        pc: dv.getUint32(VcpuGuestContext.fields.pc.offset, true),
      };
      return sem.vcpuInitialise(d.domid, vcpuId, { pc: c.pc, regs }, c.flags);
    }
  }
  if (cmd === VcpuOp.stop_singleshot_timer) {
    v.singleshotDeadlineNs = null;
    v.timerGeneration++;
    return 0;
  }
  if (cmd === VcpuOp.set_singleshot_timer) {
    const t = readStruct(d.guest, VcpuSetSingleshotTimer, arg);
    if (typeof t === "number") return t;
    const deadline = Number(t.timeout_abs_ns);
    if ((t.flags & VCPU_SSHOTTMR_FUTURE) !== 0 && deadline < d.hv.now()) return err("ETIME");
    v.singleshotDeadlineNs = deadline;
    v.timerGeneration++;
    return 0;
  }
  if (cmd !== VcpuOp.register_vcpu_info) return err("ENOSYS");
  const a = readStruct(d.guest, VcpuRegisterVcpuInfo, arg);
  if (typeof a === "number") return a;
  // On a translated guest the `mfn` field carries a gfn.
  return d.hv.hypercalls.registerVcpuInfo(d.domid, vcpuId, a.mfn, a.offset);
}

export function hvmOp(d: Domain, cmd: number, arg: number): number {
  const sem = d.hv.hypercalls;
  if (cmd !== HvmOp.set_param && cmd !== HvmOp.get_param) return err("ENOSYS");
  const a = readStruct(d.guest, XenHvmParam, arg);
  if (typeof a === "number") return a;
  if (cmd === HvmOp.set_param) return sem.hvmSetParam(d.domid, a.domid, a.index, a.value);
  const v = sem.hvmGetParam(d.domid, a.domid, a.index);
  return v < 0 ? v : writeFields(d.guest, XenHvmParam, arg, { value: v });
}

/**
 * XEN_DOMCTL_setvcpucontext / getvcpucontext with Xenon's RV32 vcpu_guest_context (136 bytes:
 * flags, pc, x[32]). Set reads the whole context first; get writes it whole.
 */
function domctlVcpuContext(d: Domain, cmd: number, domid: number, u: number): number {
  const g = d.guest;
  const a = readStruct(g, XenDomctlVcpucontext, u);
  if (typeof a === "number") return a;
  const sem = d.hv.hypercalls;
  const X = VcpuGuestContext.fields.x.offset;
  if (cmd === DomctlCmd.setvcpucontext) {
    const bytes = g.copyFromGuest(a.ctxt, VcpuGuestContext.size);
    if (typeof bytes === "number") return bytes;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const regs = new Int32Array(VCPU_GUEST_CONTEXT_REGS);
    for (let i = 1; i < VCPU_GUEST_CONTEXT_REGS; i++) regs[i] = dv.getInt32(X + 4 * i, true);
    const flags = dv.getUint32(VcpuGuestContext.fields.flags.offset, true);
    const pc = dv.getUint32(VcpuGuestContext.fields.pc.offset, true);
    return sem.domctlSetVcpuContext(d.domid, domid, a.vcpu, { pc, regs }, flags);
  }
  if (!g.check(a.ctxt, VcpuGuestContext.size, true)) return err("EFAULT");
  const ctx = sem.domctlGetVcpuContext(d.domid, domid, a.vcpu);
  if (typeof ctx === "number") return ctx;
  const out = new Uint8Array(VcpuGuestContext.size);
  const dv = new DataView(out.buffer);
  dv.setUint32(VcpuGuestContext.fields.pc.offset, ctx.pc >>> 0, true);
  for (let i = 1; i < VCPU_GUEST_CONTEXT_REGS; i++) dv.setInt32(X + 4 * i, ctx.regs[i]!, true);
  return g.copyToGuest(a.ctxt, out);
}

// --- domctl / sysctl (control domain) -------------------------------------------------------------

/** Bytes of a xenctl_bitmap of `nrBits` bits. */
const bitmapBytes = (nrBits: number): number => Math.ceil(nrBits / 8);

/**
 * Reads a pCPU bitmap as Xen's xenctl_bitmap_to_bitmap does: at most nr_cpu_ids bits are read,
 * bits past `nrBits` in the last byte are ignored. Returns the set pCPU ids, or -EFAULT.
 */
function readCpuBitmap(g: GuestMemory, handle: number, nrBits: number, nrCpuIds: number): number[] | number {
  const copy = Math.min(bitmapBytes(nrBits), bitmapBytes(nrCpuIds));
  if (copy === 0) return [];
  const gpa = handleToGpa(handle);
  if (gpa < 0) return err("EFAULT");
  const bytes = g.copyFromGuest(gpa, copy);
  if (typeof bytes === "number") return bytes;
  if (nrBits & 7 && bitmapBytes(nrBits) === copy) bytes[copy - 1]! &= ~(0xff << (nrBits & 7)) & 0xff;
  const ids: number[] = [];
  for (let i = 0; i < nrCpuIds; i++) if (bytes[i >> 3]! & (1 << (i & 7))) ids.push(i);
  return ids;
}

/**
 * Writes a pCPU bitmap as Xen's bitmap_to_xenctl_bitmap does: min(nrBits, nr_cpu_ids) bits of
 * `ids`, then zero bytes up to the guest's nrBits. 0 or -EFAULT (nothing written).
 */
function writeCpuBitmap(
  g: GuestMemory,
  handle: number,
  nrBits: number,
  ids: readonly number[],
  nrCpuIds: number,
): number {
  const guestBytes = bitmapBytes(nrBits);
  if (guestBytes === 0) return 0;
  const gpa = handleToGpa(handle);
  if (gpa < 0 || !g.check(gpa, guestBytes, true)) return err("EFAULT");
  const copy = Math.min(guestBytes, bitmapBytes(nrCpuIds));
  const out = new Uint8Array(Math.min(guestBytes, 4096));
  for (const id of ids) if (id < copy * 8) out[id >> 3]! |= 1 << (id & 7);
  for (let done = 0; done < guestBytes; done += 4096) {
    const n = Math.min(4096, guestBytes - done);
    const rc = g.copyToGuest(gpa + done, out.subarray(0, n));
    if (rc < 0) return rc;
    if (done === 0) out.fill(0);
  }
  return 0;
}

/** Writes a whole struct (no stale guest bytes survive in its padding). */
function writeWhole<F extends string>(
  g: GuestMemory,
  layout: StructLayout<F>,
  gpa: number,
  v: Partial<StructValues<F>>,
): number {
  return g.copyToGuest(gpa, encode(layout, v));
}

function domainInfoValues(i: DomctlDomainInfo): Partial<StructValues<keyof typeof XenDomctlGetdomaininfo.fields>> {
  return {
    domain: i.domid,
    flags: i.flags,
    tot_pages: i.totPages,
    max_pages: i.maxPages,
    shared_info_frame: i.sharedInfoFrame,
    cpu_time: i.cpuTimeNs,
    nr_online_vcpus: i.nrOnlineVcpus,
    max_vcpu_id: i.maxVcpuId,
    cpupool: i.cpupool,
    gpaddr_bits: i.gpaddrBits,
  };
}

/** At most this many elements in one putvcpuinfo/getvcpuinfo array (there are no continuations). */
export const SCHED_VCPUINFO_MAX = 4096;

function domctlSchedulerOp(d: Domain, domid: number, at: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const a = readStruct(g, XenDomctlSchedulerOp, at);
  if (typeof a === "number") return a;
  const kind = schedKind(a.sched_id);
  switch (a.cmd) {
    case DomctlSchedOp.putinfo: {
      const p: SchedParamsUpdate | null =
        kind === "credit2"
          ? { kind, weight: a.credit2_weight, cap: a.credit2_cap }
          : kind === "rtds"
            ? { kind, periodUs: a.rtds_period, budgetUs: a.rtds_budget }
            : kind === "null"
              ? { kind }
              : null;
      return p === null ? err("EINVAL") : sem.domctlSchedPutInfo(d.domid, domid, a.sched_id, p);
    }
    case DomctlSchedOp.getinfo: {
      const p = sem.domctlSchedGetInfo(d.domid, domid, a.sched_id);
      if (typeof p === "number") return p;
      if (p.kind === "credit2")
        return writeFields(g, XenDomctlSchedulerOp, at, { credit2_weight: p.weight, credit2_cap: p.cap });
      if (p.kind === "rtds") {
        return writeFields(g, XenDomctlSchedulerOp, at, {
          rtds_period: p.periodUs,
          rtds_budget: p.budgetUs,
          rtds_flags: p.extratime ? XEN_DOMCTL_SCHEDRT_EXTRA : 0,
        });
      }
      return 0;
    }
    case DomctlSchedOp.putvcpuinfo:
    case DomctlSchedOp.getvcpuinfo: {
      const ok = sem.domctlSchedCheck(d.domid, domid, a.sched_id, true);
      if (ok < 0) return ok;
      if (a.v_nr_vcpus > SCHED_VCPUINFO_MAX) return err("EINVAL");
      const list = handleToGpa(a.v_vcpus);
      if (list < 0 && a.v_nr_vcpus > 0) return err("EFAULT");
      let rc = 0;
      let i = 0;
      for (; i < a.v_nr_vcpus; i++) {
        const el = list + i * XenDomctlSchedparamVcpu.size;
        const e = readStruct(g, XenDomctlSchedparamVcpu, el);
        if (typeof e === "number") {
          rc = e;
          break;
        }
        if (a.cmd === DomctlSchedOp.putvcpuinfo) {
          rc = sem.domctlSchedPutVcpuInfo(d.domid, domid, a.sched_id, e.vcpuid, {
            kind: "rtds",
            periodUs: e.rtds_period,
            budgetUs: e.rtds_budget,
            extratime: (e.rtds_flags & XEN_DOMCTL_SCHEDRT_EXTRA) !== 0,
          });
        } else {
          const p = sem.domctlSchedGetVcpuInfo(d.domid, domid, a.sched_id, e.vcpuid);
          rc =
            typeof p === "number"
              ? p
              : p.kind === "rtds"
                ? writeFields(g, XenDomctlSchedparamVcpu, el, {
                    rtds_period: p.periodUs,
                    rtds_budget: p.budgetUs,
                    rtds_flags: p.extratime ? XEN_DOMCTL_SCHEDRT_EXTRA : 0,
                  })
                : err("EINVAL");
        }
        if (rc < 0) break;
      }
      const w = writeFields(g, XenDomctlSchedulerOp, at, { v_nr_vcpus: i });
      return rc < 0 ? rc : w;
    }
    default:
      return err("EINVAL");
  }
}

function domctlVcpuAffinity(d: Domain, cmd: number, domid: number, at: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const a = readStruct(g, XenDomctlVcpuaffinity, at);
  if (typeof a === "number") return a;
  const nrCpuIds = sem.controlNrCpuIds();
  if (nrCpuIds < 0) return nrCpuIds;
  const wantHard = (a.flags & VcpuAffinity.hard) !== 0;
  const wantSoft = (a.flags & VcpuAffinity.soft) !== 0;
  // Xen's vcpuaffinity_params_invalid: no flag, or a named map with a null handle.
  if (a.flags === 0 || (wantHard && a.cpumap_hard_bitmap === 0) || (wantSoft && a.cpumap_soft_bitmap === 0)) {
    return err("EINVAL");
  }
  let masks: { readonly hard: readonly number[]; readonly soft: readonly number[] } | number;
  if (cmd === DomctlCmd.setvcpuaffinity) {
    const hard = wantHard ? readCpuBitmap(g, a.cpumap_hard_bitmap, a.cpumap_hard_nr_bits, nrCpuIds) : null;
    if (typeof hard === "number") return hard;
    const soft = wantSoft ? readCpuBitmap(g, a.cpumap_soft_bitmap, a.cpumap_soft_nr_bits, nrCpuIds) : null;
    if (typeof soft === "number") return soft;
    masks = sem.domctlSetVcpuAffinity(d.domid, domid, a.vcpu, hard, soft);
  } else {
    masks = sem.domctlGetVcpuAffinity(d.domid, domid, a.vcpu);
  }
  if (typeof masks === "number") return masks;
  if (wantHard) {
    const rc = writeCpuBitmap(g, a.cpumap_hard_bitmap, a.cpumap_hard_nr_bits, masks.hard, nrCpuIds);
    if (rc < 0) return rc;
  }
  return wantSoft ? writeCpuBitmap(g, a.cpumap_soft_bitmap, a.cpumap_soft_nr_bits, masks.soft, nrCpuIds) : 0;
}

/**
 * XEN_DOMCTL (36): `a0` = struct xen_domctl. A bad pointer is -EFAULT, a wrong
 * interface_version -EACCES, an unprivileged caller -EPERM (in Xen's order).
 */
export function domctl(d: Domain, arg: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const h = readStruct(g, XenDomctl, arg);
  if (typeof h === "number") return h;
  if (h.interface_version !== XEN_DOMCTL_INTERFACE_VERSION) return err("EACCES");
  if (!d.flags.privileged) return err("EPERM");
  const u = arg + XEN_DOMCTL_U_OFFSET;
  const domid = h.domain;
  switch (h.cmd) {
    case DomctlCmd.createdomain: {
      const a = readStruct(g, XenDomctlCreatedomain, u);
      if (typeof a === "number") return a;
      const id = sem.domctlCreateDomain(d.domid, {
        domid,
        flags: a.flags,
        maxVcpus: a.max_vcpus,
        maxEvtchnPort: a.max_evtchn_port,
        maxGrantFrames: a.max_grant_frames,
        maxMaptrackFrames: a.max_maptrack_frames,
        grantOpts: a.grant_opts,
        cpupoolId: a.cpupool_id,
      });
      if (id < 0) return id;
      // As in Xen, the new id comes back in domctl.domain (a failed copy-back leaves the domain).
      const w = writeFields(g, XenDomctl, arg, { domain: id });
      return w < 0 ? w : writeFields(g, XenDomctlCreatedomain, u, { arch_clock_frequency: 0 });
    }
    case DomctlCmd.destroydomain:
      return sem.domctlDestroyDomain(d.domid, domid);
    case DomctlCmd.pausedomain:
      return sem.domctlPauseDomain(d.domid, domid);
    case DomctlCmd.unpausedomain:
      return sem.domctlUnpauseDomain(d.domid, domid);
    case DomctlCmd.getdomaininfo: {
      const i = sem.domctlGetDomainInfo(d.domid, domid);
      if (typeof i === "number") return i;
      if (!g.check(arg, XenDomctl.size, true)) return err("EFAULT");
      writeFields(g, XenDomctl, arg, { domain: i.domid });
      return writeWhole(g, XenDomctlGetdomaininfo, u, domainInfoValues(i));
    }
    case DomctlCmd.max_mem: {
      const a = readStruct(g, XenDomctlMaxMem, u);
      return typeof a === "number" ? a : sem.domctlMaxMem(d.domid, domid, a.max_memkb);
    }
    case DomctlCmd.setvcpucontext:
    case DomctlCmd.getvcpucontext:
      return domctlVcpuContext(d, h.cmd, domid, u);
    case DomctlCmd.max_vcpus: {
      const a = readStruct(g, XenDomctlMaxVcpus, u);
      return typeof a === "number" ? a : sem.domctlMaxVcpus(d.domid, domid, a.max);
    }
    case DomctlCmd.setvcpuaffinity:
    case DomctlCmd.getvcpuaffinity:
      return domctlVcpuAffinity(d, h.cmd, domid, u);
    case DomctlCmd.getvcpuinfo: {
      const a = readStruct(g, XenDomctlGetvcpuinfo, u);
      if (typeof a === "number") return a;
      const i = sem.domctlGetVcpuInfo(d.domid, domid, a.vcpu);
      if (typeof i === "number") return i;
      return writeFields(g, XenDomctlGetvcpuinfo, u, {
        online: i.online ? 1 : 0,
        blocked: i.blocked ? 1 : 0,
        running: i.running ? 1 : 0,
        cpu_time: i.cpuTimeNs,
        cpu: i.cpu,
      });
    }
    case DomctlCmd.set_virq_handler: {
      const a = readStruct(g, XenDomctlSetVirqHandler, u);
      return typeof a === "number" ? a : sem.domctlSetVirqHandler(d.domid, domid, a.virq);
    }
    case DomctlCmd.scheduler_op:
      return domctlSchedulerOp(d, domid, u);
    default:
      return err("ENOSYS");
  }
}

function sysctlCpupoolOp(d: Domain, at: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const a = readStruct(g, XenSysctlCpupoolOp, at);
  if (typeof a === "number") return a;
  const c = d.domid;
  switch (a.op) {
    case CpupoolOp.create: {
      const id = sem.sysctlCpupoolCreate(c, a.cpupool_id, a.sched_id);
      return id < 0 ? id : writeFields(g, XenSysctlCpupoolOp, at, { cpupool_id: id });
    }
    case CpupoolOp.destroy:
      return sem.sysctlCpupoolDestroy(c, a.cpupool_id);
    case CpupoolOp.info: {
      const nrCpuIds = sem.controlNrCpuIds();
      const i = sem.sysctlCpupoolInfo(c, a.cpupool_id);
      if (typeof i === "number") return i;
      const w = writeFields(g, XenSysctlCpupoolOp, at, { cpupool_id: i.poolId, sched_id: i.schedId, n_dom: i.nDom });
      return w < 0 ? w : writeCpuBitmap(g, a.cpumap_bitmap, a.cpumap_nr_bits, i.pcpus, nrCpuIds);
    }
    case CpupoolOp.addcpu:
      return sem.sysctlCpupoolAddCpu(c, a.cpupool_id, a.cpu);
    case CpupoolOp.rmcpu:
      return sem.sysctlCpupoolRemoveCpu(c, a.cpupool_id, a.cpu);
    case CpupoolOp.movedomain:
      return sem.sysctlCpupoolMoveDomain(c, a.cpupool_id, a.domid);
    case CpupoolOp.freeinfo: {
      const nrCpuIds = sem.controlNrCpuIds();
      const ids = sem.sysctlCpupoolFreeInfo(c);
      if (typeof ids === "number") return ids;
      return writeCpuBitmap(g, a.cpumap_bitmap, a.cpumap_nr_bits, ids, nrCpuIds);
    }
    default:
      return err("ENOSYS");
  }
}

function sysctlSchedulerOp(d: Domain, at: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const a = readStruct(g, XenSysctlSchedulerOp, at);
  if (typeof a === "number") return a;
  const kind = schedKind(a.sched_id);
  if (a.cmd === SysctlSchedOp.putinfo) {
    if (kind === undefined) return err("EINVAL");
    const p: PoolParamsUpdate = kind === "credit2" ? { kind, ratelimitUs: a.sched_credit2_ratelimit_us } : { kind };
    return sem.sysctlSchedPutPoolParams(d.domid, a.cpupool_id, a.sched_id, p);
  }
  if (a.cmd !== SysctlSchedOp.getinfo) return err("EINVAL");
  const p = sem.sysctlSchedGetPoolParams(d.domid, a.cpupool_id, a.sched_id);
  if (typeof p === "number") return p;
  return p.kind === "credit2"
    ? writeFields(g, XenSysctlSchedulerOp, at, { sched_credit2_ratelimit_us: p.ratelimitUs })
    : 0;
}

/** XEN_SYSCTL (35): `a0` = struct xen_sysctl; -EFAULT, -EACCES, -EPERM as for domctl. */
export function sysctl(d: Domain, arg: number): number {
  const sem = d.hv.hypercalls;
  const g = d.guest;
  const h = readStruct(g, XenSysctl, arg);
  if (typeof h === "number") return h;
  if (h.interface_version !== XEN_SYSCTL_INTERFACE_VERSION) return err("EACCES");
  if (!d.flags.privileged) return err("EPERM");
  const u = arg + XEN_SYSCTL_U_OFFSET;
  switch (h.cmd) {
    case SysctlCmd.physinfo: {
      const p = sem.sysctlPhysinfo(d.domid);
      if (typeof p === "number") return p;
      return writeWhole(g, XenSysctlPhysinfo, u, {
        threads_per_core: 1,
        cores_per_socket: p.nrCpus,
        nr_cpus: p.nrCpus,
        max_cpu_id: p.maxCpuId,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: p.cpuKhz,
        capabilities: p.capabilities,
        total_pages: p.totalPages,
        free_pages: p.freePages,
        max_mfn: p.maxMfn,
      });
    }
    case SysctlCmd.sched_id: {
      const id = sem.sysctlSchedId(d.domid);
      return id < 0 ? id : writeFields(g, XenSysctlSchedId, u, { sched_id: id });
    }
    case SysctlCmd.getdomaininfolist: {
      const a = readStruct(g, XenSysctlGetdomaininfolist, u);
      if (typeof a === "number") return a;
      const list = sem.sysctlGetDomainInfoList(d.domid, a.first_domain, a.max_domains);
      if (typeof list === "number") return list;
      const buf = handleToGpa(a.buffer);
      let n = 0;
      let rc = 0;
      for (const i of list) {
        rc =
          buf < 0
            ? err("EFAULT")
            : writeWhole(g, XenDomctlGetdomaininfo, buf + n * XenDomctlGetdomaininfo.size, domainInfoValues(i));
        if (rc < 0) break;
        n++;
      }
      const w = writeFields(g, XenSysctlGetdomaininfolist, u, { num_domains: n });
      return rc < 0 ? rc : w;
    }
    case SysctlCmd.cpupool_op:
      return sysctlCpupoolOp(d, u);
    case SysctlCmd.scheduler_op:
      return sysctlSchedulerOp(d, u);
    default:
      return err("ENOSYS");
  }
}
