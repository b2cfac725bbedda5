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
  VcpuRegisterVcpuInfo,
  VcpuSetSingleshotTimer,
  writeField,
  XEN_CAPABILITIES_INFO_LEN,
  XEN_CHANGESET_INFO_LEN,
  XEN_EXTRAVERSION_LEN,
  XEN_PFN_SIZE,
  XenAddToPhysmap,
  XenFeatureInfo,
  XenHvmParam,
  XenMemoryReservation,
  XenRemoveFromPhysmap,
} from "../public/layout.js";
import { MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT, XenMem } from "../public/memory.js";
import { ConsoleIo, HvmOp, SchedOp, VCPU_SSHOTTMR_FUTURE, VcpuOp, XenVer } from "../public/xen.js";
import { SCHED_POLL_MAX_PORTS, XEN_CAPABILITIES, XEN_CHANGESET } from "./semantics.js";

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
    case XenMem.remove_from_physmap: {
      const a = readStruct(d.guest, XenRemoveFromPhysmap, arg);
      if (typeof a === "number") return a;
      return sem.removeFromPhysmap(d.domid, a.domid, a.gpfn);
    }
    default:
      return err("ENOSYS");
  }
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
    default:
      return err("ENOSYS");
  }
}

// --- vcpu_op / hvm_op -----------------------------------------------------------------------------

export function vcpuOp(d: Domain, cmd: number, vcpuId: number, arg: number): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (cmd === VcpuOp.is_up) return 1;
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
