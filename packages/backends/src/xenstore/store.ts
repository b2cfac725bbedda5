/**
 * The XenStore tree. Nodes are immutable records keyed by canonical absolute path; a change
 * replaces records, so a transaction can hold its own versions beside the shared ones. Every
 * record written to the shared store gets a fresh generation number from one counter that only
 * grows: two reads of a path that see the same generation saw the same node. Parents list their
 * children in creation order (that is the order DIRECTORY returns).
 */
import {
  type Acl,
  inheritAcl,
  isOwner,
  ownerOf,
  PERM_NONE,
  PERM_READ,
  PERM_WRITE,
  type Principal,
  rightsOf,
} from "./permissions.js";
import { type Quotas, quotaApplies } from "./quota.js";
import { XsError } from "./wire.js";

export interface XsNode {
  readonly value: Uint8Array;
  readonly acl: Acl;
  readonly children: readonly string[];
  /** Generation of the shared record this was read from (0 for a record made inside a transaction). */
  readonly gen: number;
}

/** Where operations read and write nodes: the shared store, or a transaction's private view. */
export interface NodeView {
  get(path: string): XsNode | undefined;
  /** Creates or replaces the record at `path` (the caller keeps parents' child lists right). */
  set(path: string, node: XsNode): void;
  /** Deletes the one record at `path` (the caller deletes children first). */
  delete(path: string): void;
  /** Nodes owned by `domid` as this view sees them (for the entries-per-domain quota). */
  owned(domid: number): number;
}

/** One change, reported to watches after it is visible to everybody. */
export interface Change {
  readonly path: string;
  /** The ACL that decides who may see the event (the old one for a removal). */
  readonly acl: Acl;
  /** For a removal: every removed path with its ACL (watches below `path` fire with their own path). */
  readonly removed?: ReadonlyMap<string, Acl>;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

const EMPTY = new Uint8Array(0);

/** The shared tree. */
export class Store implements NodeView {
  private readonly nodes = new Map<string, XsNode>();
  private readonly ownedCount = new Map<number, number>();
  private generation = 0;

  constructor() {
    // `/` always exists, owned by dom0 with no access for others (as the C daemon starts).
    this.set("/", { value: EMPTY, acl: [{ domid: 0, bits: PERM_NONE }], children: [], gen: 0 });
  }

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  set(path: string, node: XsNode): void {
    const old = this.nodes.get(path);
    if (old) this.count(ownerOf(old.acl), -1);
    this.count(ownerOf(node.acl), 1);
    this.nodes.set(path, { ...node, gen: ++this.generation });
  }

  delete(path: string): void {
    const old = this.nodes.get(path);
    if (!old) return;
    this.count(ownerOf(old.acl), -1);
    this.nodes.delete(path);
  }

  owned(domid: number): number {
    return this.ownedCount.get(domid) ?? 0;
  }

  /** Current generation of a path, -1 when absent (what transactions compare at commit). */
  genOf(path: string): number {
    return this.nodes.get(path)?.gen ?? -1;
  }

  get size(): number {
    return this.nodes.size;
  }

  /** All paths, for whole-tree walks (domain release). */
  paths(): IterableIterator<string> {
    return this.nodes.keys();
  }

  private count(domid: number, delta: number): void {
    const n = (this.ownedCount.get(domid) ?? 0) + delta;
    if (n === 0) this.ownedCount.delete(domid);
    else this.ownedCount.set(domid, n);
  }
}

/**
 * A missing node is ENOENT only if the caller could read the nearest existing ancestor;
 * otherwise EACCES, so unreadable subtrees do not leak which names exist.
 */
export function missing(view: NodeView, who: Principal, path: string): XsError {
  let p = parentOf(path);
  for (;;) {
    const n = view.get(p);
    if (n) return (rightsOf(who, n.acl) & PERM_READ) !== 0 ? new XsError("ENOENT", path) : new XsError("EACCES", path);
    if (p === "/") return new XsError("ENOENT", path);
    p = parentOf(p);
  }
}

/** The node at `path`, which `who` must have `need` rights on. */
export function access(view: NodeView, who: Principal, path: string, need: number): XsNode {
  const n = view.get(path);
  if (!n) throw missing(view, who, path);
  if ((rightsOf(who, n.acl) & need) !== need) throw new XsError("EACCES", path);
  return n;
}

/**
 * WRITE and MKDIR. Missing parents are created with empty values; each new node inherits its
 * parent's ACL with an unprivileged creator as owner. Creating needs WRITE on the nearest
 * existing ancestor; replacing needs WRITE on the node. Nothing changes unless all checks pass.
 * `value` undefined means MKDIR: an existing node is left alone.
 */
export function writeNode(
  view: NodeView,
  who: Principal,
  quotas: Quotas,
  path: string,
  value: Uint8Array | undefined,
): Change | undefined {
  const limited = quotaApplies(who);
  if (limited && value !== undefined && value.length > quotas.nodeSize) throw new XsError("ENOSPC", "node too big");
  const existing = view.get(path);
  if (existing) {
    if (value === undefined) return undefined;
    if ((rightsOf(who, existing.acl) & PERM_WRITE) === 0) throw new XsError("EACCES", path);
    view.set(path, { ...existing, value });
    return { path, acl: existing.acl };
  }
  const toCreate: string[] = [];
  let p = path;
  while (!view.get(p)) {
    toCreate.push(p);
    p = parentOf(p);
  }
  const anchor = view.get(p)!;
  if ((rightsOf(who, anchor.acl) & PERM_WRITE) === 0) throw new XsError("EACCES", path);
  if (limited && view.owned(who.domid) + toCreate.length > quotas.nodes) throw new XsError("ENOSPC", "too many nodes");
  let parent = p;
  let parentNode = anchor;
  for (let i = toCreate.length - 1; i >= 0; i--) {
    const cp = toCreate[i]!;
    const node: XsNode = {
      value: i === 0 && value !== undefined ? value : EMPTY,
      acl: inheritAcl(who, parentNode.acl),
      children: [],
      gen: 0,
    };
    view.set(parent, { ...parentNode, children: [...parentNode.children, baseName(cp)] });
    view.set(cp, node);
    parent = cp;
    parentNode = node;
  }
  return { path, acl: parentNode.acl };
}

/** RM: deletes the subtree. A missing node under an existing parent is fine; the root is not removable. */
export function removeNode(view: NodeView, who: Principal, path: string): Change | undefined {
  if (path === "/") throw new XsError("EINVAL", "cannot remove /");
  const node = view.get(path);
  if (!node) {
    if (view.get(parentOf(path))) return undefined;
    throw missing(view, who, path);
  }
  if ((rightsOf(who, node.acl) & PERM_WRITE) === 0) throw new XsError("EACCES", path);
  // Read everything first, then mutate: a transaction view may refuse a read (node-touch
  // quota), and that must not leave a half-removed subtree behind.
  const parent = parentOf(path);
  const pn = view.get(parent);
  const order: [string, XsNode][] = [];
  const collect = (p: string, n: XsNode): void => {
    for (const c of n.children) {
      const cp = childPath(p, c);
      const cn = view.get(cp);
      if (cn) collect(cp, cn);
    }
    order.push([p, n]);
  };
  collect(path, node);
  const removed = new Map<string, Acl>();
  for (const [p, n] of order) {
    removed.set(p, n.acl);
    view.delete(p);
  }
  if (pn) {
    const name = baseName(path);
    view.set(parent, { ...pn, children: pn.children.filter((c) => c !== name) });
  }
  return { path, acl: node.acl, removed };
}

/**
 * SET_PERMS: needs WRITE and ownership. An unprivileged owner may not give the node away
 * (EPERM) and may list at most `quotas.perms` other domains (ENOSPC).
 */
export function setAcl(view: NodeView, who: Principal, quotas: Quotas, path: string, acl: Acl): Change {
  if (acl.length === 0) throw new XsError("EINVAL", "no permissions");
  const node = access(view, who, path, PERM_WRITE);
  if (!isOwner(who, node.acl)) throw new XsError("EACCES", path);
  if (!who.privileged && ownerOf(acl) !== ownerOf(node.acl)) throw new XsError("EPERM", "cannot change owner");
  if (quotaApplies(who) && acl.length - 1 > quotas.perms) throw new XsError("ENOSPC", "too many permissions");
  view.set(path, { ...node, acl });
  return { path, acl };
}

export function readValue(view: NodeView, who: Principal, path: string): Uint8Array {
  return access(view, who, path, PERM_READ).value;
}

export function listChildren(view: NodeView, who: Principal, path: string): XsNode {
  return access(view, who, path, PERM_READ);
}

export function getAcl(view: NodeView, who: Principal, path: string): Acl {
  return access(view, who, path, PERM_READ).acl;
}
