/**
 * The save / migration stream: Xen's libxc stream v3 framing (docs/specs/libxc-migration-stream,
 * xen-abi.md §9) with a domain type of our own. Xen defines only x86 PV and HVM streams; an RV32
 * Xenon domain gets DHDR_TYPE_XENON_RV32 and private records in the optional range (bit 31), so a
 * generic stream walker can step over them, while our restorer requires the ones it needs.
 * Layouts are declared here once; MIGRATION.md describes them byte by byte.
 */
import { MAX_GFN } from "../p2m/types.js";

/** Image header: big-endian whatever the stream's endianness. */
export const IHDR_SIZE = 24;
export const IHDR_MARKER_HI = 0xffffffff;
export const IHDR_ID = 0x58454e46; // "XENF"
export const IHDR_VERSION = 3;
/** options bit 0: the rest of the stream is big-endian. */
export const IHDR_OPT_BIG_ENDIAN = 1;

/** Domain header (stream endianness). */
export const DHDR_SIZE = 16;
/** Our invented domain type: "RV32" read as a big-endian u32. Xen: 1 x86 PV, 2 x86 HVM. */
export const DHDR_TYPE_XENON_RV32 = 0x52563332;
export const PAGE_SHIFT = 12;
export const PAGE_BYTES = 1 << PAGE_SHIFT;
/** The Xen interface version the stream follows (xen_major / xen_minor). */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;

/** Record header: type u32, body_length u32; the body is zero-padded to a multiple of 8. */
export const RHDR_SIZE = 8;
export const REC_TYPE_OPTIONAL = 0x80000000;
/** Xen's REC_LENGTH_MAX: no record body is longer (128 MiB). */
export const REC_LENGTH_MAX = 128 * 2 ** 20;

export const RecType = {
  END: 0x00,
  PAGE_DATA: 0x01,
  SHARED_INFO: 0x07,
  HVM_PARAMS: 0x0a,
  STATIC_DATA_END: 0x10,
  /** Private, optional-bit records of the XENON_RV32 domain type. */
  RV32_DOMAIN_INFO: 0x80005200,
  RV32_VCPU: 0x80005201,
  RV32_EVTCHN: 0x80005202,
  RV32_GRANT_TABLE: 0x80005203,
  RV32_PHYSMAP: 0x80005204,
} as const;

export const REC_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(RecType).map(([k, v]) => [v, k]));

export function recName(type: number): string {
  return REC_NAMES.get(type) ?? `0x${(type >>> 0).toString(16).padStart(8, "0")}`;
}

/** PAGE_DATA: at most this many pfns per record (Xen's MAX_BATCH_SIZE, 4 MiB of pages). */
export const MAX_BATCH_SIZE = 1024;
/** Page type nibble (bits 63..60 of each pfn word). */
export const PageType = {
  NOTAB: 0x0,
  BROKEN: 0xd,
  XALLOC: 0xe,
  XTAB: 0xf,
} as const;
/** Highest pfn an RV32 domain has (20-bit gfns). */
export const MAX_PFN = MAX_GFN;

/** RV32_DOMAIN_INFO body: the creation limits of the domain (static data). */
export const DOMAIN_INFO_SIZE = 32;
/** DOMAIN_INFO flags. */
export const DomainInfoFlag = { IS_CONSOLE: 1 } as const;

/**
 * RV32_VCPU body: vcpu_id u32, flags u32, vcpu_info_gfn u32, vcpu_info_offset u32,
 * timer_ns i64 (ns left on the single-shot timer, -1 none), then one u32 per VCPU_SAVED_SLOTS.
 */
export const VCPU_REC_HEADER = 24;
export const VcpuRecFlag = {
  ONLINE: 1,
  INITIALISED: 2,
  /** vcpu_info registered at (gfn, offset). */
  VCPU_INFO: 4,
  /** The registers are a VCPUOP_initialise context not yet loaded (the vCPU was never up). */
  START_CONTEXT: 8,
} as const;

/** RV32_EVTCHN body: count u32, reserved u32, then per port: port, state, vcpu, u1, u2, reserved (u32 each). */
export const EVTCHN_REC_HEADER = 8;
export const EVTCHN_REC_ENTRY = 24;

/** RV32_GRANT_TABLE body: nr_frames u32, version u32, gfn u32 per frame (pad to 8), then each frame's page. */
export const GRANT_REC_HEADER = 8;
export const NO_GFN = 0xffffffff;

/** RV32_PHYSMAP body: shared_info_gfn u32 (NO_GFN none), reserved u32. */
export const PHYSMAP_REC_SIZE = 8;

/** HVM_PARAMS body: count u32, reserved u32, then {index u64, value u64}. */
export const HVM_PARAMS_HEADER = 8;
