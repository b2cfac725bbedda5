/**
 * Watches of one connection. A watch on W fires for a change at W or below it, reporting the
 * changed path; when an ancestor of W is removed it fires with W itself. Special watches
 * (`@introduceDomain`, `@releaseDomain`) fire only for their own event. A relative watch
 * (registered without a leading `/`) reports paths relative to the connection's home.
 */
import type { Acl } from "./permissions.js";
import type { Change } from "./store.js";
import { XsError } from "./wire.js";

export const SPECIAL_WATCHES = ["@introduceDomain", "@releaseDomain"] as const;
export type SpecialWatch = (typeof SPECIAL_WATCHES)[number];

export function isSpecial(path: string): path is SpecialWatch {
  return (SPECIAL_WATCHES as readonly string[]).includes(path);
}

export interface Watch {
  /** The path as registered (echoed in the immediate event and used by UNWATCH). */
  readonly path: string;
  /** Canonical absolute path (or the special name). */
  readonly abs: string;
  readonly token: string;
  readonly relative: boolean;
}

export interface PendingEvent {
  readonly path: string;
  readonly token: string;
  /** Who may see it: the watcher needs read rights on this ACL. */
  readonly acl: Acl;
}

/** `p` is strictly below `dir`. */
export function isBelow(p: string, dir: string): boolean {
  return dir === "/" ? p !== "/" && p.startsWith("/") : p.startsWith(`${dir}/`);
}

export class WatchList {
  private readonly watches = new Map<string, Watch>();

  constructor(
    /** `/local/domain/<id>`, against which relative watches are resolved and reported. */
    private readonly home: string,
  ) {}

  get size(): number {
    return this.watches.size;
  }

  add(w: Watch): void {
    const key = WatchList.key(w.abs, w.token);
    if (this.watches.has(key)) throw new XsError("EEXIST", `watch ${w.path} ${w.token}`);
    this.watches.set(key, w);
  }

  /** `abs` is the canonical path: a watch set as `device` is removed by `/local/domain/<id>/device` too. */
  remove(abs: string, token: string): void {
    if (!this.watches.delete(WatchList.key(abs, token))) throw new XsError("ENOENT", `watch ${abs} ${token}`);
  }

  clear(): void {
    this.watches.clear();
  }

  /** The events this connection gets for `change` (before the permission filter). */
  eventsFor(change: Change): PendingEvent[] {
    const out: PendingEvent[] = [];
    const special = change.path.startsWith("@");
    for (const w of this.watches.values()) {
      if (special) {
        if (w.abs === change.path) out.push({ path: change.path, token: w.token, acl: change.acl });
      } else if (w.abs === change.path || isBelow(change.path, w.abs)) {
        out.push({ path: this.report(w, change.path), token: w.token, acl: change.acl });
      } else if (change.removed && isBelow(w.abs, change.path)) {
        out.push({ path: w.path, token: w.token, acl: nearestAcl(change.removed, w.abs) ?? change.acl });
      }
    }
    return out;
  }

  private report(w: Watch, abs: string): string {
    if (!w.relative) return abs;
    const prefix = `${this.home}/`;
    return abs.startsWith(prefix) ? abs.slice(prefix.length) : abs;
  }

  /** Watches are identified by canonical path and token, as in the C daemon. */
  private static key(abs: string, token: string): string {
    return `${abs}\0${token}`;
  }
}

function nearestAcl(removed: ReadonlyMap<string, Acl>, path: string): Acl | undefined {
  for (let p = path; p.length > 0; p = p.slice(0, Math.max(p.lastIndexOf("/"), 0))) {
    const acl = removed.get(p);
    if (acl) return acl;
  }
  return undefined;
}
