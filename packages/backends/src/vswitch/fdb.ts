/**
 * The switch's forwarding database (a bridge's fdb): source MAC -> port it was last seen on,
 * with ageing. An entry older than the ageing time is forgotten, so a guest that moved (another
 * port, another host) is flooded to until it speaks again. Bounded: when full, the oldest entry
 * makes room, so a port spraying random source MACs cannot grow the table without limit.
 */

/** Linux's bridge default (ageing_time 300 s). */
export const DEFAULT_AGEING_MS = 300_000;
export const DEFAULT_FDB_MAX = 4096;

interface Entry {
  port: number;
  seen: number;
}

export class ForwardingDatabase {
  // Insertion order is (roughly) refresh order: an entry is re-inserted when seen after an
  // eighth of the ageing time, so the first entry is the one to evict.
  private readonly entries = new Map<number, Entry>();

  constructor(
    readonly ageingMs = DEFAULT_AGEING_MS,
    readonly max = DEFAULT_FDB_MAX,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Records that `mac` was seen on port `port` at `now`. */
  learn(mac: number, port: number, now: number): void {
    const e = this.entries.get(mac);
    if (e !== undefined) {
      if (e.port === port && now - e.seen < this.ageingMs / 8) {
        e.seen = now; // fresh enough: skip the re-insert on the hot path
        return;
      }
      this.entries.delete(mac);
    } else if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(mac, { port, seen: now });
  }

  /** The port `mac` was learned on, or -1 (unknown or aged out). */
  lookup(mac: number, now: number): number {
    const e = this.entries.get(mac);
    if (e === undefined) return -1;
    if (now - e.seen >= this.ageingMs) {
      this.entries.delete(mac);
      return -1;
    }
    return e.port;
  }

  /** Forgets every entry of a port (it was unplugged). */
  flushPort(port: number): void {
    for (const [mac, e] of this.entries) if (e.port === port) this.entries.delete(mac);
  }

  /** Drops aged entries (the switch calls this now and then). */
  expire(now: number): void {
    for (const [mac, e] of this.entries) if (now - e.seen >= this.ageingMs) this.entries.delete(mac);
  }

  /** [mac, port] pairs, for `brctl showmacs`-style listings and tests. */
  list(now: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [mac, e] of this.entries) if (now - e.seen < this.ageingMs) out.push([mac, e.port]);
    return out;
  }
}
