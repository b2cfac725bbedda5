/**
 * XenStore permissions. A node's ACL is a non-empty list; entry 0 names the owner and its letter
 * is the default for every domain not listed after it. Letters: n none, r read, w write, b both.
 */
import { XsError } from "./wire.js";

export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_BOTH = PERM_READ | PERM_WRITE;
export type PermBits = number;

export interface Perm {
  readonly domid: number;
  readonly bits: PermBits;
  /** Set when the named domain did not exist when the entry was written: it grants nothing. */
  readonly ignored?: boolean;
}
export type Acl = readonly Perm[];

const LETTERS = ["n", "r", "w", "b"] as const;
const MAX_DOMID = 0x7fef; // DOMID_FIRST_RESERVED - 1

export function formatPerm(p: Perm): string {
  return `${LETTERS[p.bits & PERM_BOTH]}${p.domid}`;
}

/** Parses `r5`-style strings; anything else is EINVAL. */
export function parsePerm(s: string): Perm {
  const m = /^([nrwb])(\d{1,5})$/.exec(s);
  if (!m) throw new XsError("EINVAL", `bad permission '${s}'`);
  const domid = Number(m[2]);
  if (domid > MAX_DOMID) throw new XsError("EINVAL", `bad domid in permission '${s}'`);
  return { domid, bits: LETTERS.indexOf(m[1] as (typeof LETTERS)[number]) };
}

/** Who is asking: a domain id, whether it is privileged, and the domain it may act for (SET_TARGET). */
export interface Principal {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target?: number | undefined;
}

/**
 * The rights `who` has on a node with `acl`. Privileged callers and the owner (or a domain
 * targeting the owner) get everything; otherwise the first listed entry for the caller (or its
 * target) wins, and the owner entry's letter is the default.
 */
export function rightsOf(who: Principal, acl: Acl): PermBits {
  if (who.privileged) return PERM_BOTH;
  const owner = acl[0];
  if (owner === undefined) return PERM_NONE;
  if (owner.domid === who.domid || (who.target !== undefined && owner.domid === who.target)) return PERM_BOTH;
  for (let i = 1; i < acl.length; i++) {
    const p = acl[i]!;
    if (p.ignored) continue;
    if (p.domid === who.domid || (who.target !== undefined && p.domid === who.target)) return p.bits;
  }
  return owner.bits;
}

export function isOwner(who: Principal, acl: Acl): boolean {
  if (who.privileged) return true;
  const owner = acl[0];
  return owner !== undefined && (owner.domid === who.domid || owner.domid === who.target);
}

/**
 * The ACL of a node created by `who` under a parent with `parentAcl`: a copy of the parent's,
 * except that an unprivileged creator becomes the owner (entry 0's domid), so it can always
 * reach what it made and is charged for it.
 */
export function inheritAcl(who: Principal, parentAcl: Acl): Acl {
  if (who.privileged || parentAcl.length === 0) return parentAcl.length ? parentAcl : [{ domid: 0, bits: PERM_NONE }];
  const [owner, ...rest] = parentAcl;
  return [{ domid: who.domid, bits: owner!.bits }, ...rest];
}

/** The owning domid of an ACL (entry 0). */
export function ownerOf(acl: Acl): number {
  return acl[0]?.domid ?? 0;
}
