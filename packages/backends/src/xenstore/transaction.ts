/**
 * Transactions as journals over the shared store. A transaction keeps its own versions of the
 * nodes it wrote (null = deleted) and, for every path it touched, the generation the shared
 * store had when it first looked (-1 = absent). Commit succeeds only if all those generations
 * are unchanged; then the private versions are copied in and the queued changes fire watches.
 * Invariant: every path in `writes` is also in `seen`, so conflict detection covers writes too.
 */

import { ownerOf } from "./permissions.js";
import type { Change, NodeView, Store, XsNode } from "./store.js";
import { XsError } from "./wire.js";

export class Transaction implements NodeView {
  private readonly seen = new Map<string, number>();
  private readonly writes = new Map<string, XsNode | null>();
  private readonly ownedDelta = new Map<number, number>();
  readonly changes: Change[] = [];

  constructor(
    readonly id: number,
    private readonly base: Store,
    /** Max distinct paths touched, or Infinity (privileged). */
    private readonly maxNodes: number,
  ) {}

  get(path: string): XsNode | undefined {
    if (this.writes.has(path)) return this.writes.get(path) ?? undefined;
    this.touch(path);
    return this.base.get(path);
  }

  set(path: string, node: XsNode): void {
    const old = this.get(path);
    if (old) this.count(ownerOf(old.acl), -1);
    this.count(ownerOf(node.acl), 1);
    this.writes.set(path, node);
  }

  delete(path: string): void {
    const old = this.get(path);
    if (old) this.count(ownerOf(old.acl), -1);
    this.writes.set(path, null);
  }

  owned(domid: number): number {
    return this.base.owned(domid) + (this.ownedDelta.get(domid) ?? 0);
  }

  /** True when nothing this transaction looked at has changed in the shared store. */
  valid(): boolean {
    for (const [path, gen] of this.seen) if (this.base.genOf(path) !== gen) return false;
    return true;
  }

  /** Applies the journal to the shared store; EAGAIN (and nothing applied) on conflict. */
  commit(): Change[] {
    if (!this.valid()) throw new XsError("EAGAIN", `transaction ${this.id} conflicts`);
    for (const [path, node] of this.writes) {
      if (node === null) this.base.delete(path);
      else this.base.set(path, node);
    }
    return this.changes;
  }

  private touch(path: string): void {
    if (this.seen.has(path)) return;
    if (this.seen.size >= this.maxNodes) throw new XsError("ENOSPC", "transaction touches too many nodes");
    this.seen.set(path, this.base.genOf(path));
  }

  private count(domid: number, delta: number): void {
    this.ownedDelta.set(domid, (this.ownedDelta.get(domid) ?? 0) + delta);
  }
}
