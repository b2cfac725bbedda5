/**
 * Record bodies of the XENON_RV32 stream: encoders for the saver, decoders that check every
 * field for the restorer (a hostile or corrupt stream gets a MigrationStreamError, never an
 * exception from deeper down).
 */
import { VcpuSlot } from "@xenon/hw";
import {
  DOMAIN_INFO_SIZE,
  EVTCHN_REC_ENTRY,
  EVTCHN_REC_HEADER,
  GRANT_REC_HEADER,
  HVM_PARAMS_HEADER,
  MAX_BATCH_SIZE,
  MAX_PFN,
  NO_GFN,
  PAGE_BYTES,
  PageType,
  PHYSMAP_REC_SIZE,
  VCPU_REC_HEADER,
} from "./stream_format.js";
import { MigrationStreamError } from "./stream_reader.js";
import { pad8 } from "./stream_writer.js";

const fail = (msg: string): never => {
  throw new MigrationStreamError(msg);
};

// ---- PAGE_DATA ---------------------------------------------------------------------------------

export interface PageBatch {
  readonly pfns: readonly number[];
  /** Page type nibble per pfn. */
  readonly types: readonly number[];
  /** Page contents for the entries whose type carries data, in order. */
  readonly data: Uint8Array;
}

/** True for page types that are followed by a page of data. */
export function pageTypeHasData(t: number): boolean {
  return t === PageType.NOTAB;
}

const KNOWN_PAGE_TYPES = new Set<number>([PageType.NOTAB, PageType.XALLOC, PageType.XTAB]);

/** PAGE_DATA body: count, reserved, pfn words (type nibble << 60 | pfn), then the data pages. */
export function encodePageData(
  pfns: readonly number[],
  types: readonly number[],
  data: Uint8Array,
  le = true,
): Uint8Array {
  const c = pfns.length;
  const out = new Uint8Array(8 + 8 * c + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, c, le);
  for (let i = 0; i < c; i++) {
    // u64 = (type << 60) | pfn; pfn < 2^20, so the high word is just the nibble.
    const off = 8 + 8 * i;
    v.setUint32(off + (le ? 0 : 4), pfns[i]!, le);
    v.setUint32(off + (le ? 4 : 0), (types[i]! << 28) >>> 0, le);
  }
  out.set(data, 8 + 8 * c);
  return out;
}

export function decodePageData(body: Uint8Array, le: boolean): PageBatch {
  if (body.length < 8) fail(`PAGE_DATA body of ${body.length} bytes is shorter than its header`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const c = v.getUint32(0, le);
  if (c === 0) fail("PAGE_DATA with a page count of 0");
  if (c > MAX_BATCH_SIZE) fail(`PAGE_DATA with ${c} pages (at most ${MAX_BATCH_SIZE} per record)`);
  if (v.getUint32(4, le) !== 0) fail("PAGE_DATA reserved field is not zero");
  if (body.length < 8 + 8 * c) fail(`PAGE_DATA of ${c} pages is ${body.length} bytes, too short for its pfn array`);
  const pfns: number[] = [];
  const types: number[] = [];
  let withData = 0;
  for (let i = 0; i < c; i++) {
    const off = 8 + 8 * i;
    const lo = v.getUint32(off + (le ? 0 : 4), le);
    const hi = v.getUint32(off + (le ? 4 : 0), le);
    const type = hi >>> 28;
    // bits 59..52 reserved, 51..32 of the pfn: an RV32 pfn has 20 bits, so all must be zero.
    if ((hi & 0x0fffffff) !== 0 || lo > MAX_PFN)
      fail(
        `PAGE_DATA entry ${i}: pfn 0x${((hi & 0x0fffffff) * 2 ** 32 + lo).toString(16)} beyond the highest pfn 0x${MAX_PFN.toString(16)}`,
      );
    if (!KNOWN_PAGE_TYPES.has(type))
      fail(`PAGE_DATA entry ${i} (pfn 0x${lo.toString(16)}): page type 0x${type.toString(16)} not supported`);
    if (pageTypeHasData(type)) withData++;
    pfns.push(lo);
    types.push(type);
  }
  const want = 8 + 8 * c + withData * PAGE_BYTES;
  if (body.length !== want)
    fail(`PAGE_DATA of ${c} pages (${withData} with data) must be ${want} bytes, not ${body.length}`);
  return { pfns, types, data: body.subarray(8 + 8 * c) };
}

/** The largest PAGE_DATA body a sender may produce. */
export const PAGE_DATA_MAX_BODY = 8 + MAX_BATCH_SIZE * (8 + PAGE_BYTES);

// ---- RV32_DOMAIN_INFO ----------------------------------------------------------------------------

export interface DomainInfoRec {
  readonly maxVcpus: number;
  readonly maxPages: number;
  readonly p2mPoolPages: number;
  readonly maxEvtchnPort: number;
  readonly maxGrantFrames: number;
  readonly maxMaptrackFrames: number;
  readonly flags: number;
}

const DOMAIN_INFO_FIELDS = [
  "maxVcpus",
  "maxPages",
  "p2mPoolPages",
  "maxEvtchnPort",
  "maxGrantFrames",
  "maxMaptrackFrames",
  "flags",
] as const;

export function encodeDomainInfo(r: DomainInfoRec, le = true): Uint8Array {
  const out = new Uint8Array(DOMAIN_INFO_SIZE);
  const v = new DataView(out.buffer);
  DOMAIN_INFO_FIELDS.forEach((f, i) => {
    v.setUint32(i * 4, r[f], le);
  });
  return out;
}

export function decodeDomainInfo(body: Uint8Array, le: boolean): DomainInfoRec {
  if (body.length !== DOMAIN_INFO_SIZE) fail(`RV32_DOMAIN_INFO must be ${DOMAIN_INFO_SIZE} bytes, not ${body.length}`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  if (v.getUint32(28, le) !== 0) fail("RV32_DOMAIN_INFO reserved field is not zero");
  const r: Record<string, number> = {};
  DOMAIN_INFO_FIELDS.forEach((f, i) => {
    r[f] = v.getUint32(i * 4, le);
  });
  return r as unknown as DomainInfoRec;
}

// ---- RV32_VCPU -----------------------------------------------------------------------------------

/**
 * The VcpuSlot words a vCPU record carries, in record order: x1..x31, pc, the supervisor CSRs,
 * pending interrupts, privilege, instret and the LR/SC reservation. Exit records, the preempt
 * flag, the TLB generation and the upcall line are per-host and rebuilt on restore.
 */
export const VCPU_SAVED_SLOTS: readonly number[] = [
  ...Array.from({ length: 31 }, (_, i) => i + 1),
  VcpuSlot.PC,
  VcpuSlot.SSTATUS,
  VcpuSlot.SIE,
  VcpuSlot.STVEC,
  VcpuSlot.SSCRATCH,
  VcpuSlot.SEPC,
  VcpuSlot.SCAUSE,
  VcpuSlot.STVAL,
  VcpuSlot.SIP,
  VcpuSlot.PRIV,
  VcpuSlot.INSTRET_LO,
  VcpuSlot.INSTRET_HI,
  VcpuSlot.RESERVATION_ADDR,
  VcpuSlot.RESERVATION_VALID,
  VcpuSlot.RESERVATION_VALUE,
];
export const VCPU_REC_SIZE = VCPU_REC_HEADER + VCPU_SAVED_SLOTS.length * 4;

export interface VcpuRec {
  readonly vcpuId: number;
  readonly flags: number;
  readonly vcpuInfoGfn: number;
  readonly vcpuInfoOffset: number;
  /** ns left on the single-shot timer, or -1. */
  readonly timerNs: number;
  /** Values of VCPU_SAVED_SLOTS, in order. */
  readonly regs: Int32Array;
}

export function encodeVcpu(r: VcpuRec, le = true): Uint8Array {
  const out = new Uint8Array(VCPU_REC_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, r.vcpuId, le);
  v.setUint32(4, r.flags, le);
  v.setUint32(8, r.vcpuInfoGfn >>> 0, le);
  v.setUint32(12, r.vcpuInfoOffset >>> 0, le);
  v.setBigInt64(16, BigInt(Math.round(r.timerNs)), le);
  for (let i = 0; i < VCPU_SAVED_SLOTS.length; i++) v.setInt32(VCPU_REC_HEADER + i * 4, r.regs[i]!, le);
  return out;
}

export function decodeVcpu(body: Uint8Array, le: boolean): VcpuRec {
  if (body.length !== VCPU_REC_SIZE) fail(`RV32_VCPU must be ${VCPU_REC_SIZE} bytes, not ${body.length}`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const flags = v.getUint32(4, le);
  if ((flags & ~0xf) !== 0) fail(`RV32_VCPU flags 0x${flags.toString(16)} set unknown bits`);
  const timer = v.getBigInt64(16, le);
  if (timer < -1n || timer > BigInt(Number.MAX_SAFE_INTEGER)) fail(`RV32_VCPU timer ${timer} out of range`);
  const regs = new Int32Array(VCPU_SAVED_SLOTS.length);
  for (let i = 0; i < regs.length; i++) regs[i] = v.getInt32(VCPU_REC_HEADER + i * 4, le);
  return {
    vcpuId: v.getUint32(0, le),
    flags,
    vcpuInfoGfn: v.getUint32(8, le),
    vcpuInfoOffset: v.getUint32(12, le),
    timerNs: Number(timer),
    regs,
  };
}

// ---- RV32_EVTCHN ---------------------------------------------------------------------------------

export interface EvtchnRec {
  readonly port: number;
  readonly state: number;
  readonly vcpu: number;
  readonly u1: number;
  readonly u2: number;
}

export function encodeEvtchn(ports: readonly EvtchnRec[], le = true): Uint8Array {
  const out = new Uint8Array(EVTCHN_REC_HEADER + ports.length * EVTCHN_REC_ENTRY);
  const v = new DataView(out.buffer);
  v.setUint32(0, ports.length, le);
  ports.forEach((p, i) => {
    const o = EVTCHN_REC_HEADER + i * EVTCHN_REC_ENTRY;
    v.setUint32(o, p.port, le);
    v.setUint32(o + 4, p.state, le);
    v.setUint32(o + 8, p.vcpu, le);
    v.setUint32(o + 12, p.u1 >>> 0, le);
    v.setUint32(o + 16, p.u2 >>> 0, le);
  });
  return out;
}

export function decodeEvtchn(body: Uint8Array, le: boolean): EvtchnRec[] {
  if (body.length < EVTCHN_REC_HEADER) fail(`RV32_EVTCHN body of ${body.length} bytes is shorter than its header`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const n = v.getUint32(0, le);
  if (v.getUint32(4, le) !== 0) fail("RV32_EVTCHN reserved field is not zero");
  if (body.length !== EVTCHN_REC_HEADER + n * EVTCHN_REC_ENTRY)
    fail(`RV32_EVTCHN of ${n} ports must be ${EVTCHN_REC_HEADER + n * EVTCHN_REC_ENTRY} bytes, not ${body.length}`);
  const out: EvtchnRec[] = [];
  for (let i = 0; i < n; i++) {
    const o = EVTCHN_REC_HEADER + i * EVTCHN_REC_ENTRY;
    if (v.getUint32(o + 20, le) !== 0) fail(`RV32_EVTCHN entry ${i}: reserved field is not zero`);
    out.push({
      port: v.getUint32(o, le),
      state: v.getUint32(o + 4, le),
      vcpu: v.getUint32(o + 8, le),
      u1: v.getUint32(o + 12, le),
      u2: v.getUint32(o + 16, le),
    });
  }
  return out;
}

// ---- RV32_GRANT_TABLE ----------------------------------------------------------------------------

export interface GrantTableRec {
  readonly version: number;
  /** Per grant frame: the gfn it is mapped at, or NO_GFN. */
  readonly gfns: readonly number[];
  /** nr_frames pages: the grant entries. */
  readonly frames: Uint8Array;
}

export function encodeGrantTable(r: GrantTableRec, le = true): Uint8Array {
  const n = r.gfns.length;
  const gfnBytes = 4 * n + pad8(4 * n);
  const out = new Uint8Array(GRANT_REC_HEADER + gfnBytes + n * PAGE_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, n, le);
  v.setUint32(4, r.version, le);
  r.gfns.forEach((g, i) => {
    v.setUint32(GRANT_REC_HEADER + 4 * i, g >>> 0, le);
  });
  out.set(r.frames, GRANT_REC_HEADER + gfnBytes);
  return out;
}

export function decodeGrantTable(body: Uint8Array, le: boolean, maxFrames: number): GrantTableRec {
  if (body.length < GRANT_REC_HEADER) fail(`RV32_GRANT_TABLE body of ${body.length} bytes is shorter than its header`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const n = v.getUint32(0, le);
  const version = v.getUint32(4, le);
  if (version !== 1) fail(`RV32_GRANT_TABLE version ${version} not supported (v1 only)`);
  if (n < 1 || n > maxFrames) fail(`RV32_GRANT_TABLE with ${n} frames (the domain allows 1..${maxFrames})`);
  const gfnBytes = 4 * n + pad8(4 * n);
  const want = GRANT_REC_HEADER + gfnBytes + n * PAGE_BYTES;
  if (body.length !== want) fail(`RV32_GRANT_TABLE of ${n} frames must be ${want} bytes, not ${body.length}`);
  const gfns: number[] = [];
  for (let i = 0; i < n; i++) {
    const g = v.getUint32(GRANT_REC_HEADER + 4 * i, le);
    if (g !== NO_GFN && g > MAX_PFN)
      fail(`RV32_GRANT_TABLE frame ${i}: gfn 0x${g.toString(16)} beyond the highest pfn`);
    gfns.push(g);
  }
  return { version, gfns, frames: body.subarray(GRANT_REC_HEADER + gfnBytes) };
}

// ---- RV32_PHYSMAP --------------------------------------------------------------------------------

export function encodePhysmap(sharedInfoGfn: number, le = true): Uint8Array {
  const out = new Uint8Array(PHYSMAP_REC_SIZE);
  new DataView(out.buffer).setUint32(0, sharedInfoGfn < 0 ? NO_GFN : sharedInfoGfn, le);
  return out;
}

/** The shared_info gfn, or -1. */
export function decodePhysmap(body: Uint8Array, le: boolean): number {
  if (body.length !== PHYSMAP_REC_SIZE) fail(`RV32_PHYSMAP must be ${PHYSMAP_REC_SIZE} bytes, not ${body.length}`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  if (v.getUint32(4, le) !== 0) fail("RV32_PHYSMAP reserved field is not zero");
  const g = v.getUint32(0, le);
  if (g === NO_GFN) return -1;
  if (g > MAX_PFN) fail(`RV32_PHYSMAP shared_info gfn 0x${g.toString(16)} beyond the highest pfn`);
  return g;
}

// ---- HVM_PARAMS ----------------------------------------------------------------------------------

export function encodeHvmParams(params: ReadonlyArray<readonly [number, number]>, le = true): Uint8Array {
  const out = new Uint8Array(HVM_PARAMS_HEADER + params.length * 16);
  const v = new DataView(out.buffer);
  v.setUint32(0, params.length, le);
  params.forEach(([index, value], i) => {
    v.setBigUint64(HVM_PARAMS_HEADER + i * 16, BigInt(index), le);
    v.setBigUint64(HVM_PARAMS_HEADER + i * 16 + 8, BigInt(value >>> 0), le);
  });
  return out;
}

export function decodeHvmParams(body: Uint8Array, le: boolean, nrParams: number): Array<[number, number]> {
  if (body.length < HVM_PARAMS_HEADER) fail(`HVM_PARAMS body of ${body.length} bytes is shorter than its header`);
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const n = v.getUint32(0, le);
  if (v.getUint32(4, le) !== 0) fail("HVM_PARAMS reserved field is not zero");
  if (body.length !== HVM_PARAMS_HEADER + n * 16)
    fail(`HVM_PARAMS of ${n} entries must be ${HVM_PARAMS_HEADER + n * 16} bytes, not ${body.length}`);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const index = v.getBigUint64(HVM_PARAMS_HEADER + i * 16, le);
    const value = v.getBigUint64(HVM_PARAMS_HEADER + i * 16 + 8, le);
    if (index >= BigInt(nrParams)) fail(`HVM_PARAMS entry ${i}: index ${index} beyond ${nrParams - 1}`);
    if (value > 0xffffffffn) fail(`HVM_PARAMS entry ${i}: value 0x${value.toString(16)} does not fit an RV32 register`);
    out.push([Number(index), Number(value)]);
  }
  return out;
}
