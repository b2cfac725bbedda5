/**
 * The in-memory device tree: nodes with ordered properties and ordered children, plus the
 * blob-level data (memory reservations, boot CPU) that a DTB carries besides the tree.
 *
 * Names are byte strings: each character is one byte (0x01..0xff), so any name a blob can hold
 * survives a read/write round trip unchanged. The devicetree spec restricts names to ASCII,
 * which is a subset of this.
 */
import { FDT_DEFAULT_ADDRESS_CELLS, FDT_DEFAULT_SIZE_CELLS, FDT_MAX_PROPNAME_LEN } from "./constants.js";
import { FdtError } from "./errors.js";
import {
  checkNcells,
  decodeReg,
  type RegEntry,
  readString,
  readStringList,
  readU32,
  readU32Array,
  readU64,
} from "./values.js";

/** Throws FDT_ERR_BADNAME unless `name` is storable as a property name (and readable back). */
export function checkPropertyName(name: string): void {
  if (name.length === 0 || name.length > FDT_MAX_PROPNAME_LEN || !isByteString(name)) {
    throw new FdtError("FDT_ERR_BADNAME", `bad property name ${JSON.stringify(name)}`);
  }
}

/** Throws FDT_ERR_BADNAME unless `name` is storable as a (non-root) node name. */
export function checkNodeName(name: string): void {
  if (name.length === 0 || name.includes("/") || !isByteString(name)) {
    throw new FdtError("FDT_ERR_BADNAME", `bad node name ${JSON.stringify(name)}`);
  }
}

/** True if every character is a non-NUL byte value, i.e. the name encodes 1:1 as latin-1. */
function isByteString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0xff) return false;
  }
  return true;
}

/** libfdt-style name match: exact, or `want` has no unit address and equals the node's base name. */
function nameMatches(nodeName: string, want: string): boolean {
  if (nodeName === want) return true;
  return !want.includes("@") && nodeName.startsWith(want) && nodeName.charCodeAt(want.length) === 0x40;
}

export class FdtNode {
  /** Insertion-ordered; the writer emits properties in this order. */
  readonly properties = new Map<string, Uint8Array>();
  /** Emitted in this order. Sibling names must be unique (checked by addChild and the writer). */
  readonly children: FdtNode[] = [];

  /** `name` includes the unit address (`cpu@0`); the root's name is "". */
  constructor(readonly name: string) {
    if (name !== "") checkNodeName(name);
  }

  /** The name without its unit address. */
  get baseName(): string {
    const at = this.name.indexOf("@");
    return at < 0 ? this.name : this.name.slice(0, at);
  }

  /** The text after '@', or undefined when the name has none. */
  get unitAddress(): string | undefined {
    const at = this.name.indexOf("@");
    return at < 0 ? undefined : this.name.slice(at + 1);
  }

  /** The child named exactly `name`, else the first whose base name is `name` (if `name` has no '@'). */
  child(name: string): FdtNode | undefined {
    return this.children.find((c) => c.name === name) ?? this.children.find((c) => nameMatches(c.name, name));
  }

  /** Appends a child (a new empty node when given a name); FDT_ERR_EXISTS if the name is taken. */
  addChild(child: FdtNode | string): FdtNode {
    const node = typeof child === "string" ? new FdtNode(child) : child;
    if (node.name === "") throw new FdtError("FDT_ERR_BADNAME", "only the root may have an empty name");
    if (this.children.some((c) => c.name === node.name)) {
      throw new FdtError("FDT_ERR_EXISTS", `node ${this.name || "/"} already has a child ${node.name}`);
    }
    this.children.push(node);
    return node;
  }

  /** The child with exactly this name, created (appended) if missing. Handy for building trees. */
  subnode(name: string): FdtNode {
    return this.children.find((c) => c.name === name) ?? this.addChild(name);
  }

  removeChild(name: string): boolean {
    const i = this.children.findIndex((c) => c.name === name);
    if (i >= 0) this.children.splice(i, 1);
    return i >= 0;
  }

  /** Sets (or replaces, keeping its position) a property. Chainable. */
  set(name: string, value: Uint8Array): this {
    checkPropertyName(name);
    this.properties.set(name, value);
    return this;
  }

  get(name: string): Uint8Array | undefined {
    return this.properties.get(name);
  }

  has(name: string): boolean {
    return this.properties.has(name);
  }

  delete(name: string): boolean {
    return this.properties.delete(name);
  }

  /** The property's value; FDT_ERR_NOTFOUND if absent. */
  require(name: string): Uint8Array {
    const v = this.properties.get(name);
    if (v === undefined) throw new FdtError("FDT_ERR_NOTFOUND", `node ${this.name || "/"} has no property ${name}`);
    return v;
  }

  // Typed getters: undefined when absent, FDT_ERR_BADVALUE when present but malformed.
  getU32(name: string): number | undefined {
    return this.decode(name, readU32);
  }
  getU32Array(name: string): number[] | undefined {
    return this.decode(name, readU32Array);
  }
  getU64(name: string): bigint | undefined {
    return this.decode(name, readU64);
  }
  getString(name: string): string | undefined {
    return this.decode(name, readString);
  }
  getStringList(name: string): string[] | undefined {
    return this.decode(name, readStringList);
  }

  /** #address-cells this node imposes on its children's `reg` (default 2). */
  addressCells(): number {
    return checkNcells(this.getU32("#address-cells") ?? FDT_DEFAULT_ADDRESS_CELLS, 1, "#address-cells");
  }

  /** #size-cells this node imposes on its children's `reg` (default 1). */
  sizeCells(): number {
    return checkNcells(this.getU32("#size-cells") ?? FDT_DEFAULT_SIZE_CELLS, 0, "#size-cells");
  }

  /** The node's phandle (`phandle`, else legacy `linux,phandle`), if it has one. */
  phandle(): number | undefined {
    return this.getU32("phandle") ?? this.getU32("linux,phandle");
  }

  private decode<T>(name: string, fn: (v: Uint8Array) => T): T | undefined {
    const v = this.properties.get(name);
    if (v === undefined) return undefined;
    try {
      return fn(v);
    } catch (e) {
      if (e instanceof FdtError) throw new FdtError(e.code, `property ${name}: ${e.message}`, undefined, { cause: e });
      throw e;
    }
  }
}

export interface MemoryReservation {
  address: bigint;
  size: bigint;
}

export interface WalkEntry {
  node: FdtNode;
  parent: FdtNode | undefined;
  path: string;
  depth: number;
}

export class Fdt {
  /**
   * @param root the root node (name "")
   * @param memoryReservations the /memreserve/ entries, in order
   * @param bootCpuidPhys header field; undefined lets the writer derive it the way dtc does
   *   (the `reg` of the first child of /cpus, else 0)
   */
  constructor(
    readonly root: FdtNode = new FdtNode(""),
    readonly memoryReservations: MemoryReservation[] = [],
    public bootCpuidPhys: number | undefined = undefined,
  ) {
    if (root.name !== "") throw new FdtError("FDT_ERR_BADNAME", "the root node's name must be empty");
  }

  /**
   * The chain root..node for `path`, or undefined if no such node. A path not starting with '/'
   * begins with an alias from /aliases (`serial0/child`). Repeated slashes are ignored.
   * FDT_ERR_BADPATH for an empty path or an unknown alias.
   */
  lookup(path: string): FdtNode[] | undefined {
    if (path === "") throw new FdtError("FDT_ERR_BADPATH", "empty path");
    let rest = path;
    if (!path.startsWith("/")) {
      const slash = path.indexOf("/");
      const alias = slash < 0 ? path : path.slice(0, slash);
      const target = this.root.child("aliases")?.getString(alias);
      if (target === undefined || !target.startsWith("/")) {
        throw new FdtError("FDT_ERR_BADPATH", `no usable alias ${JSON.stringify(alias)}`);
      }
      rest = target + (slash < 0 ? "" : path.slice(slash));
    }
    const chain = [this.root];
    for (const part of rest.split("/")) {
      if (part === "") continue;
      const next = chain[chain.length - 1]!.child(part);
      if (!next) return undefined;
      chain.push(next);
    }
    return chain;
  }

  findNode(path: string): FdtNode | undefined {
    return this.lookup(path)?.at(-1);
  }

  /** Like findNode, but FDT_ERR_NOTFOUND when absent. */
  getNode(path: string): FdtNode {
    const node = this.findNode(path);
    if (!node) throw new FdtError("FDT_ERR_NOTFOUND", `no node ${path}`);
    return node;
  }

  /** Every node, depth first in blob order, with its parent and path. Iterative (no recursion). */
  *walk(): Generator<WalkEntry> {
    const stack: WalkEntry[] = [{ node: this.root, parent: undefined, path: "/", depth: 0 }];
    while (stack.length > 0) {
      const e = stack.pop()!;
      yield e;
      for (let i = e.node.children.length - 1; i >= 0; i--) {
        const c = e.node.children[i]!;
        stack.push({
          node: c,
          parent: e.node,
          path: e.depth === 0 ? `/${c.name}` : `${e.path}/${c.name}`,
          depth: e.depth + 1,
        });
      }
    }
  }

  /** The path of `node` in this tree, or undefined if it is not in it. */
  pathOf(node: FdtNode): string | undefined {
    for (const e of this.walk()) if (e.node === node) return e.path;
    return undefined;
  }

  parentOf(node: FdtNode): FdtNode | undefined {
    for (const e of this.walk()) if (e.node === node) return e.parent;
    return undefined;
  }

  /**
   * The node's `reg`, decoded with its parent's #address-cells/#size-cells.
   * FDT_ERR_NOTFOUND if the node or its reg is missing.
   */
  reg(path: string): RegEntry[] {
    const chain = this.lookup(path);
    if (!chain) throw new FdtError("FDT_ERR_NOTFOUND", `no node ${path}`);
    const node = chain[chain.length - 1]!;
    const parent = chain[chain.length - 2];
    if (!parent) throw new FdtError("FDT_ERR_BADPATH", "the root node has no parent to give reg a meaning");
    return decodeReg(node.require("reg"), parent.addressCells(), parent.sizeCells());
  }

  /**
   * phandle → node for the whole tree. FDT_ERR_BADPHANDLE if a phandle is 0 or 0xffffffff, if two
   * nodes share one, or if a node's `phandle` and `linux,phandle` disagree.
   */
  phandles(): Map<number, FdtNode> {
    const out = new Map<number, FdtNode>();
    for (const { node, path } of this.walk()) {
      const a = node.getU32("phandle");
      const b = node.getU32("linux,phandle");
      if (a !== undefined && b !== undefined && a !== b) {
        throw new FdtError("FDT_ERR_BADPHANDLE", `${path}: phandle ${a} != linux,phandle ${b}`);
      }
      const ph = a ?? b;
      if (ph === undefined) continue;
      if (ph === 0 || ph === 0xffffffff) throw new FdtError("FDT_ERR_BADPHANDLE", `${path}: invalid phandle ${ph}`);
      if (out.has(ph)) throw new FdtError("FDT_ERR_BADPHANDLE", `${path}: phandle ${ph} is used twice`);
      out.set(ph, node);
    }
    return out;
  }

  nodeByPhandle(phandle: number): FdtNode | undefined {
    return this.phandles().get(phandle);
  }

  /**
   * Resolves a property that is a list of phandles (`cpupool-cpus = <&cpu0 &cpu1>`).
   * FDT_ERR_NOTFOUND if absent, FDT_ERR_BADPHANDLE if any cell refers to no node.
   */
  resolvePhandles(node: FdtNode, name: string): FdtNode[] {
    const index = this.phandles();
    return readU32Array(node.require(name)).map((ph) => {
      const target = index.get(ph);
      if (!target) throw new FdtError("FDT_ERR_BADPHANDLE", `property ${name}: no node has phandle ${ph}`);
      return target;
    });
  }

  /** What dtc writes as boot_cpuid_phys when not told: the first /cpus child's one-cell `reg`, else 0. */
  guessBootCpuid(): number {
    const first = this.root.children.find((c) => c.name === "cpus")?.children[0];
    const r = first?.get("reg");
    return r !== undefined && r.length === 4 ? readU32(r) : 0;
  }
}
