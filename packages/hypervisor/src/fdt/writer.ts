/**
 * DTB writer. For a given tree the output is byte-identical to `dtc -I dts -O dtb` (dtc 1.6.1,
 * default options) for the same tree:
 *   - header (40 bytes, version 17, last_comp_version 16), then the memory-reservation block at
 *     the next 8-aligned offset (= 40), then the struct block, then the strings block, with no
 *     gaps and no trailing padding; totalsize is the sum.
 *   - struct block: properties of a node in order, then its children in order; every token,
 *     name and value padded with zeros to 4 bytes.
 *   - strings block: property names in first-use order (depth-first, properties before
 *     children). A name is not added again if it already occurs in the block as a whole string
 *     or as the tail of one ("phandle" reuses the end of "linux,phandle"); the earliest such
 *     position is used. This is how dtc 1.6.1 de-duplicates.
 */
import {
  align4,
  FDT_LAST_COMP_VERSION,
  FDT_MAGIC,
  FDT_RSV_ENTRY_SIZE,
  FDT_V17_HEADER_SIZE,
  FDT_VERSION,
  FdtHeader,
  FdtToken,
} from "./constants.js";
import { FdtError } from "./errors.js";
import { checkNodeName, checkPropertyName, type Fdt, type FdtNode } from "./tree.js";

const U64_LIMIT = 1n << 64n;
const U32_MAX = 0xffffffff;

/** The strings block under construction, with dtc's tail-sharing lookup. */
class StringTable {
  private readonly strings: string[] = [];
  private readonly starts: number[] = [];
  private readonly offsets = new Map<string, number>();
  size = 0;

  offsetOf(name: string): number {
    const known = this.offsets.get(name);
    if (known !== undefined) return known;
    let off = -1;
    // Strings are stored in offset order, so the first one ending in `name` gives the lowest offset.
    for (let i = 0; i < this.strings.length && off < 0; i++) {
      const s = this.strings[i]!;
      if (s.endsWith(name)) off = this.starts[i]! + s.length - name.length;
    }
    if (off < 0) {
      off = this.size;
      this.strings.push(name);
      this.starts.push(off);
      this.size += name.length + 1;
    }
    this.offsets.set(name, off);
    return off;
  }

  /** Writes the block (latin-1 bytes, NUL after each string) at `at`. */
  writeTo(out: Uint8Array, at: number): void {
    for (let i = 0; i < this.strings.length; i++) writeLatin1(out, at + this.starts[i]!, this.strings[i]!);
  }
}

function writeLatin1(out: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
}

interface Visit {
  node: FdtNode;
  /** Index of the next child to descend into. */
  next: number;
}

/**
 * Depth-first over the tree, iteratively (no recursion limit), calling enter before a node's
 * children and leave after. Validates names, sibling uniqueness and that no node appears twice
 * (a cycle would otherwise never end).
 */
function traverse(root: FdtNode, enter: (n: FdtNode) => void, leave: (n: FdtNode) => void): void {
  const seen = new Set<FdtNode>([root]);
  const stack: Visit[] = [{ node: root, next: 0 }];
  enter(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === 0) {
      const names = new Set<string>();
      for (const c of top.node.children) {
        checkNodeName(c.name);
        if (names.has(c.name)) throw new FdtError("FDT_ERR_EXISTS", `two sibling nodes named ${c.name}`);
        names.add(c.name);
      }
    }
    const child = top.node.children[top.next++];
    if (child === undefined) {
      leave(top.node);
      stack.pop();
      continue;
    }
    if (seen.has(child)) throw new FdtError("FDT_ERR_BADSTRUCTURE", `node ${child.name} appears twice in the tree`);
    seen.add(child);
    enter(child);
    stack.push({ node: child, next: 0 });
  }
}

/** Serialises `fdt` as a version-17 DTB laid out exactly as dtc lays it out. */
export function writeFdt(fdt: Fdt): Uint8Array {
  if (fdt.root.name !== "") throw new FdtError("FDT_ERR_BADNAME", "the root node's name must be empty");
  for (const r of fdt.memoryReservations) {
    // A size-0 entry would read back as the end of the list.
    if (r.address < 0n || r.address >= U64_LIMIT || r.size <= 0n || r.size >= U64_LIMIT) {
      throw new FdtError("FDT_ERR_BADVALUE", `bad memory reservation ${r.address}+${r.size}`);
    }
  }
  const boot = fdt.bootCpuidPhys ?? fdt.guessBootCpuid();
  if (!Number.isInteger(boot) || boot < 0 || boot > U32_MAX) {
    throw new FdtError("FDT_ERR_BADVALUE", `bad boot_cpuid_phys ${boot}`);
  }

  // Pass 1: validate, size the struct block and build the strings block in emission order.
  const strings = new StringTable();
  let structSize = 4; // FDT_END
  traverse(
    fdt.root,
    (n) => {
      structSize += 4 + align4(n.name.length + 1);
      for (const [name, value] of n.properties) {
        checkPropertyName(name);
        strings.offsetOf(name);
        structSize += 12 + align4(value.length);
      }
    },
    () => {
      structSize += 4;
    },
  );

  const rsvOff = FDT_V17_HEADER_SIZE; // already 8-aligned
  const structOff = rsvOff + (fdt.memoryReservations.length + 1) * FDT_RSV_ENTRY_SIZE;
  const stringsOff = structOff + structSize;
  const total = stringsOff + strings.size;
  if (total > U32_MAX) throw new FdtError("FDT_ERR_BADVALUE", `tree too large for a DTB (${total} bytes)`);

  // Pass 2: fill a zeroed buffer, so all padding and the rsvmap terminator are already zero.
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(FdtHeader.magic, FDT_MAGIC);
  dv.setUint32(FdtHeader.totalsize, total);
  dv.setUint32(FdtHeader.offDtStruct, structOff);
  dv.setUint32(FdtHeader.offDtStrings, stringsOff);
  dv.setUint32(FdtHeader.offMemRsvmap, rsvOff);
  dv.setUint32(FdtHeader.version, FDT_VERSION);
  dv.setUint32(FdtHeader.lastCompVersion, FDT_LAST_COMP_VERSION);
  dv.setUint32(FdtHeader.bootCpuidPhys, boot);
  dv.setUint32(FdtHeader.sizeDtStrings, strings.size);
  dv.setUint32(FdtHeader.sizeDtStruct, structSize);

  fdt.memoryReservations.forEach((r, i) => {
    dv.setBigUint64(rsvOff + i * FDT_RSV_ENTRY_SIZE, r.address);
    dv.setBigUint64(rsvOff + i * FDT_RSV_ENTRY_SIZE + 8, r.size);
  });

  let at = structOff;
  // The tree was validated above; a second traversal sees the same nodes in the same order.
  traverse(
    fdt.root,
    (n) => {
      dv.setUint32(at, FdtToken.BEGIN_NODE);
      writeLatin1(out, at + 4, n.name);
      at += 4 + align4(n.name.length + 1);
      for (const [name, value] of n.properties) {
        dv.setUint32(at, FdtToken.PROP);
        dv.setUint32(at + 4, value.length);
        dv.setUint32(at + 8, strings.offsetOf(name));
        out.set(value, at + 12);
        at += 12 + align4(value.length);
      }
    },
    () => {
      dv.setUint32(at, FdtToken.END_NODE);
      at += 4;
    },
  );
  dv.setUint32(at, FdtToken.END);
  at += 4;
  if (at !== stringsOff) throw new FdtError("FDT_ERR_INTERNAL", "struct block size changed while writing");
  strings.writeTo(out, stringsOff);
  return out;
}
