/**
 * DTB reader with strict validation. Any input either yields an Fdt or throws FdtError with a
 * stable code; nothing else escapes. Work is linear in the blob size (every step consumes at
 * least 4 bytes of struct block), nesting is bounded, and nothing is allocated from a length
 * field before that length has been checked against the bytes actually present, so memory use
 * is at most a small multiple of the input.
 *
 * Accepted: version >= 16 with last_comp_version <= 17 (v16 has no size_dt_struct; the struct
 * block then ends at its FDT_END). Checked, in this order:
 *   header present, magic, version, totalsize within the buffer and not below the header;
 *   block alignment (rsvmap 8, struct 4); every block inside [header end, totalsize);
 *   reservation list terminated inside totalsize; the three blocks pairwise disjoint;
 *   struct block: exactly one root (name ""), balanced BEGIN/END_NODE, properties only inside a
 *   node and before its children, names non-empty (a node name has no '/'), no duplicate
 *   property or sibling name, every string offset inside the strings block and NUL-terminated
 *   there, FDT_END last with nothing after it (v17), FDT_NOP allowed between tokens.
 * Property names longer than FDT_MAX_PROPNAME_LEN are refused (the spec allows 31 characters):
 * distinct string offsets may each name a different suffix of one long string, and without a
 * cap decoding them would cost time and memory quadratic in the blob size.
 */
import {
  align4,
  FDT_DEFAULT_MAX_DEPTH,
  FDT_MAGIC,
  FDT_MAX_PROPNAME_LEN,
  FDT_OLDEST_READABLE_VERSION,
  FDT_RSV_ENTRY_SIZE,
  FDT_RSVMAP_ALIGN,
  FDT_STRUCT_ALIGN,
  FDT_V16_HEADER_SIZE,
  FDT_V17_HEADER_SIZE,
  FDT_VERSION,
  FdtHeader,
  FdtToken,
} from "./constants.js";
import { FdtError } from "./errors.js";
import { Fdt, FdtNode, type MemoryReservation } from "./tree.js";

export interface ReadOptions {
  /** Deepest allowed node (root = 1); deeper blobs get FDT_ERR_TOODEEP. Default 64. */
  maxDepth?: number;
}

/** The header fields, as read (after validation). */
export interface FdtHeaderInfo {
  totalsize: number;
  offDtStruct: number;
  offDtStrings: number;
  offMemRsvmap: number;
  version: number;
  lastCompVersion: number;
  bootCpuidPhys: number;
  sizeDtStrings: number;
  /** For v16 blobs: the measured size up to and including FDT_END. */
  sizeDtStruct: number;
}

export interface ReadResult {
  fdt: Fdt;
  header: FdtHeaderInfo;
}

/** Parses a DTB into a tree. See readFdtWithHeader for the header fields as well. */
export function readFdt(blob: Uint8Array, options: ReadOptions = {}): Fdt {
  return readFdtWithHeader(blob, options).fdt;
}

export function readFdtWithHeader(blob: Uint8Array, options: ReadOptions = {}): ReadResult {
  try {
    return new Reader(blob, options.maxDepth ?? FDT_DEFAULT_MAX_DEPTH).read();
  } catch (e) {
    if (e instanceof FdtError) throw e;
    // Backstop for the "only FdtError" guarantee; reaching it is a bug in this file.
    throw new FdtError("FDT_ERR_INTERNAL", `unexpected ${String(e)}`, undefined, { cause: e });
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 0x2000) {
    s += String.fromCharCode(...b.subarray(i, Math.min(end, i + 0x2000)));
  }
  return s;
}

const fail = (code: FdtError["code"], detail: string, offset?: number): never => {
  throw new FdtError(code, detail, offset);
};

class Reader {
  private readonly dv: DataView;
  /** A plain Uint8Array view of the input: for a Buffer, slice() would alias instead of copy. */
  private readonly b: Uint8Array;

  constructor(
    input: Uint8Array,
    private readonly maxDepth: number,
  ) {
    this.b = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.dv = new DataView(input.buffer, input.byteOffset, input.byteLength);
    if (!Number.isInteger(maxDepth) || maxDepth < 1) fail("FDT_ERR_BADVALUE", `bad maxDepth ${maxDepth}`);
  }

  private u32(at: number): number {
    return this.dv.getUint32(at);
  }

  read(): ReadResult {
    const { structLimit, ...h } = this.header();
    const reservations = this.reservations(h);
    // v17 states the struct size, so layout is checked before the struct is trusted; v16 only
    // learns it by walking to FDT_END.
    if (h.version >= 17) this.checkDisjoint(h, reservations.length);
    const { root, structEnd } = this.structure(h, structLimit);
    const header = { ...h, sizeDtStruct: structEnd - h.offDtStruct };
    if (h.version < 17) this.checkDisjoint(header, reservations.length);
    return { fdt: new Fdt(root, reservations, h.bootCpuidPhys), header };
  }

  private header(): FdtHeaderInfo & { structLimit: number } {
    const len = this.b.length;
    if (len < 4) fail("FDT_ERR_TRUNCATED", `${len} bytes is too short for a header`);
    if (this.u32(FdtHeader.magic) !== FDT_MAGIC) fail("FDT_ERR_BADMAGIC", "magic is not 0xd00dfeed", 0);
    if (len < FdtHeader.lastCompVersion + 4) fail("FDT_ERR_TRUNCATED", `${len} bytes is too short for a header`);
    const version = this.u32(FdtHeader.version);
    const lastCompVersion = this.u32(FdtHeader.lastCompVersion);
    if (version < FDT_OLDEST_READABLE_VERSION || lastCompVersion > FDT_VERSION || lastCompVersion > version) {
      fail("FDT_ERR_BADVERSION", `version ${version} / last compatible ${lastCompVersion} not readable`);
    }
    const hdrSize = version >= 17 ? FDT_V17_HEADER_SIZE : FDT_V16_HEADER_SIZE;
    if (len < hdrSize) fail("FDT_ERR_TRUNCATED", `${len} bytes is too short for a v${version} header`);

    const totalsize = this.u32(FdtHeader.totalsize);
    if (totalsize > len) fail("FDT_ERR_TRUNCATED", `totalsize ${totalsize} but only ${len} bytes present`);
    if (totalsize < hdrSize) fail("FDT_ERR_BADLAYOUT", `totalsize ${totalsize} is smaller than the header`);

    const offMemRsvmap = this.u32(FdtHeader.offMemRsvmap);
    const offDtStruct = this.u32(FdtHeader.offDtStruct);
    const offDtStrings = this.u32(FdtHeader.offDtStrings);
    const sizeDtStrings = this.u32(FdtHeader.sizeDtStrings);
    const sizeField = version >= 17 ? this.u32(FdtHeader.sizeDtStruct) : undefined;

    if (offMemRsvmap % FDT_RSVMAP_ALIGN !== 0) fail("FDT_ERR_ALIGNMENT", `off_mem_rsvmap ${offMemRsvmap}`);
    if (offDtStruct % FDT_STRUCT_ALIGN !== 0) fail("FDT_ERR_ALIGNMENT", `off_dt_struct ${offDtStruct}`);
    const inside = (what: string, off: number, size: number) => {
      if (off < hdrSize || off > totalsize || size > totalsize - off) {
        fail("FDT_ERR_BADOFFSET", `${what} [${off}, +${size}) is outside [${hdrSize}, ${totalsize})`);
      }
    };
    inside("memory reservation block", offMemRsvmap, FDT_RSV_ENTRY_SIZE);
    inside("strings block", offDtStrings, sizeDtStrings);
    let structLimit: number;
    if (sizeField !== undefined) {
      inside("struct block", offDtStruct, sizeField);
      structLimit = offDtStruct + sizeField;
    } else {
      // v16: the struct block runs at most to the next block after it, or to totalsize.
      inside("struct block", offDtStruct, 0);
      structLimit = offDtStrings > offDtStruct ? offDtStrings : totalsize;
      if (offMemRsvmap > offDtStruct) structLimit = Math.min(structLimit, offMemRsvmap);
    }
    return {
      totalsize,
      offDtStruct,
      offDtStrings,
      offMemRsvmap,
      version,
      lastCompVersion,
      bootCpuidPhys: this.u32(FdtHeader.bootCpuidPhys),
      sizeDtStrings,
      sizeDtStruct: sizeField ?? 0,
      structLimit,
    };
  }

  private reservations(h: FdtHeaderInfo): MemoryReservation[] {
    const out: MemoryReservation[] = [];
    // The list may run up to the next block that starts after it (a list reaching into it
    // overlaps it), or else to totalsize (a list reaching past it is truncated).
    let bound = h.totalsize;
    for (const [start, size] of [
      [h.offDtStruct, 1],
      [h.offDtStrings, h.sizeDtStrings],
    ] as const) {
      if (size > 0 && start >= h.offMemRsvmap && start < bound) bound = start;
    }
    for (let at = h.offMemRsvmap; ; at += FDT_RSV_ENTRY_SIZE) {
      if (at + FDT_RSV_ENTRY_SIZE > bound) {
        if (bound < h.totalsize) fail("FDT_ERR_BADLAYOUT", "memory reservation list runs into another block", at);
        fail("FDT_ERR_TRUNCATED", "memory reservation list has no terminating entry", at);
      }
      const address = this.dv.getBigUint64(at);
      const size = this.dv.getBigUint64(at + 8);
      // As in libfdt and dtc, the list ends at the first entry whose size is 0.
      if (size === 0n) return out;
      out.push({ address, size });
    }
  }

  /** Walks the struct block once, building the tree. Returns the offset just past FDT_END. */
  private structure(h: FdtHeaderInfo, limit: number): { root: FdtNode; structEnd: number } {
    const strStart = h.offDtStrings;
    const strEnd = h.offDtStrings + h.sizeDtStrings;
    const names = new Map<number, string>();
    // Each open node, and whether it has had a child yet (properties must come first).
    const stack: { node: FdtNode; props: Set<string>; kids: Set<string>; hadChild: boolean }[] = [];
    let root: FdtNode | undefined;
    let at = h.offDtStruct;

    const need = (n: number, what: string) => {
      if (n > limit - at) fail("FDT_ERR_TRUNCATED", `${what} runs past the end of the struct block`, at);
    };
    const propName = (off: number, tokenAt: number): string => {
      const known = names.get(off);
      if (known !== undefined) return known;
      if (off >= h.sizeDtStrings) {
        fail("FDT_ERR_BADOFFSET", `property name offset ${off} is outside the strings block`, tokenAt);
      }
      // The search window is bounded by the name length limit, so hostile string tables cost
      // at most FDT_MAX_PROPNAME_LEN per distinct offset.
      const from = strStart + off;
      const window = this.b.subarray(from, Math.min(strEnd, from + FDT_MAX_PROPNAME_LEN + 1));
      const len = window.indexOf(0);
      if (len < 0 && window.length > FDT_MAX_PROPNAME_LEN) {
        fail("FDT_ERR_BADNAME", `property name at ${off} is longer than ${FDT_MAX_PROPNAME_LEN} bytes`, tokenAt);
      }
      if (len < 0) fail("FDT_ERR_TRUNCATED", `property name at ${off} is not NUL-terminated`, tokenAt);
      if (len === 0) fail("FDT_ERR_BADNAME", "empty property name", tokenAt);
      const name = latin1(window, 0, len);
      names.set(off, name);
      return name;
    };

    for (;;) {
      // Ending cleanly between tokens after the root closed is a missing FDT_END, not truncation.
      if (root && stack.length === 0 && at === limit) fail("FDT_ERR_BADSTRUCTURE", "no FDT_END token", at);
      need(4, "token");
      const tokenAt = at;
      const token = this.u32(at);
      at += 4;
      switch (token) {
        case FdtToken.NOP:
          break;
        case FdtToken.BEGIN_NODE: {
          if (root && stack.length === 0) fail("FDT_ERR_BADSTRUCTURE", "a second top-level node", tokenAt);
          const len = this.b.subarray(at, limit).indexOf(0);
          if (len < 0) fail("FDT_ERR_TRUNCATED", "node name runs past the struct block", tokenAt);
          const name = latin1(this.b, at, at + len);
          need(align4(len + 1), "node name");
          at += align4(len + 1);
          const parent = stack[stack.length - 1];
          if (!parent) {
            if (name !== "") fail("FDT_ERR_BADNAME", `root node named ${JSON.stringify(name)}`, tokenAt);
          } else if (name === "" || name.includes("/")) {
            fail("FDT_ERR_BADNAME", `bad node name ${JSON.stringify(name)}`, tokenAt);
          }
          if (stack.length + 1 > this.maxDepth)
            fail("FDT_ERR_TOODEEP", `nesting deeper than ${this.maxDepth}`, tokenAt);
          const node = new FdtNode(name);
          if (parent) {
            if (parent.kids.has(name)) fail("FDT_ERR_EXISTS", `two sibling nodes named ${name}`, tokenAt);
            parent.kids.add(name);
            parent.hadChild = true;
            parent.node.children.push(node);
          } else {
            root = node;
          }
          stack.push({ node, props: new Set(), kids: new Set(), hadChild: false });
          break;
        }
        case FdtToken.PROP: {
          const cur = stack[stack.length - 1];
          if (!cur) fail("FDT_ERR_BADSTRUCTURE", "property outside any node", tokenAt);
          need(8, "property header");
          const len = this.u32(at);
          const nameoff = this.u32(at + 4);
          at += 8;
          need(len, "property value");
          const name = propName(nameoff, tokenAt);
          if (cur!.hadChild) fail("FDT_ERR_BADSTRUCTURE", `property ${name} after a child node`, tokenAt);
          if (cur!.props.has(name)) fail("FDT_ERR_EXISTS", `property ${name} appears twice`, tokenAt);
          cur!.props.add(name);
          // slice copies, so the tree does not pin (or alias) the caller's buffer.
          cur!.node.properties.set(name, this.b.slice(at, at + len));
          need(align4(len), "property padding");
          at += align4(len);
          break;
        }
        case FdtToken.END_NODE:
          if (!stack.pop()) fail("FDT_ERR_BADSTRUCTURE", "FDT_END_NODE without an open node", tokenAt);
          break;
        case FdtToken.END:
          if (!root || stack.length > 0) fail("FDT_ERR_BADSTRUCTURE", "FDT_END before the root node closed", tokenAt);
          if (h.version >= 17 && at !== limit) fail("FDT_ERR_BADSTRUCTURE", "data after FDT_END", at);
          return { root: root!, structEnd: at };
        default:
          fail("FDT_ERR_BADSTRUCTURE", `unknown token 0x${token.toString(16)}`, tokenAt);
      }
    }
  }

  /** The header, rsvmap (up to its terminator), struct and strings regions must not overlap. */
  private checkDisjoint(h: FdtHeaderInfo, reservations: number): void {
    const regions: [string, number, number][] = [
      ["header", 0, h.version >= 17 ? FDT_V17_HEADER_SIZE : FDT_V16_HEADER_SIZE],
      ["memory reservation block", h.offMemRsvmap, h.offMemRsvmap + (reservations + 1) * FDT_RSV_ENTRY_SIZE],
      ["struct block", h.offDtStruct, h.offDtStruct + h.sizeDtStruct],
      ["strings block", h.offDtStrings, h.offDtStrings + h.sizeDtStrings],
    ];
    for (let i = 0; i < regions.length; i++) {
      for (let j = i + 1; j < regions.length; j++) {
        const [an, a0, a1] = regions[i]!;
        const [bn, b0, b1] = regions[j]!;
        if (a0 < b1 && b0 < a1) fail("FDT_ERR_BADLAYOUT", `${an} [${a0}, ${a1}) overlaps ${bn} [${b0}, ${b1})`);
      }
    }
  }
}
