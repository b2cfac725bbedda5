/**
 * Per-domain limits, with the Xen 4.17 C xenstored defaults. They bind unprivileged domains only;
 * dom0 and other privileged connections are never limited.
 */
import type { Principal } from "./permissions.js";
import { XENSTORE_REL_PATH_MAX } from "./wire.js";

export interface Quotas {
  /** Nodes a domain may own (`-E`); exceeding → ENOSPC. */
  nodes: number;
  /** Bytes of one node's value (`-S`); exceeding → ENOSPC. */
  nodeSize: number;
  /** Watches per domain (`-W`); checked with `>` before adding, so one extra slips in; → E2BIG. */
  watches: number;
  /** Open transactions per connection (`-t`); checked with `>` before adding; → ENOSPC. */
  transactions: number;
  /** Permission entries besides the owner (`-A`); → ENOSPC. */
  perms: number;
  /** Distinct nodes one transaction may touch (`-Q transaction-nodes`); → ENOSPC. */
  transactionNodes: number;
  /** Path length below `/local/domain/<id>/` (`-M`, capped at XENSTORE_REL_PATH_MAX); → EINVAL. */
  pathLength: number;
  /** Replies queued for a domain that has not taken them; at this many its input stalls. */
  outstanding: number;
}

export const DEFAULT_QUOTAS: Readonly<Quotas> = Object.freeze({
  nodes: 1000,
  nodeSize: 2048,
  watches: 128,
  transactions: 10,
  perms: 5,
  transactionNodes: 1024,
  pathLength: XENSTORE_REL_PATH_MAX,
  outstanding: 20,
});

/** Global limit on open transactions over all connections, so many connections cannot exhaust memory. */
export const DEFAULT_MAX_TRANSACTIONS_TOTAL = 4096;

export function quotaApplies(who: Principal): boolean {
  return !who.privileged;
}

export function resolveQuotas(overrides: Partial<Quotas> | undefined): Quotas {
  const q = { ...DEFAULT_QUOTAS, ...overrides };
  q.pathLength = Math.min(q.pathLength, XENSTORE_REL_PATH_MAX);
  return q;
}
