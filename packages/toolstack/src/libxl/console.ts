/**
 * Domain console logs (xenconsoled's job): every byte a domain writes is kept in a bounded
 * history and passed to whoever is attached (`xl console`), so an attach shows what was printed
 * before it. A log ends when its domain is gone; attached readers are told once.
 */

const HISTORY_BYTES = 64 * 1024;

export type ConsoleListener = {
  readonly data: (bytes: Uint8Array) => void;
  readonly end: (reason: string) => void;
};

export class ConsoleLog {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private readonly listeners = new Set<ConsoleListener>();
  private endReason: string | null = null;

  /** Appends output; the oldest bytes beyond the history bound are dropped. */
  push(bytes: Uint8Array): void {
    if (this.endReason !== null || bytes.length === 0) return;
    const copy = bytes.slice();
    this.chunks.push(copy);
    this.size += copy.length;
    while (this.size > HISTORY_BYTES && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
    for (const l of this.listeners) l.data(copy);
  }

  history(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  get ended(): boolean {
    return this.endReason !== null;
  }

  /** Sends the history, then live output until detach() or the end. */
  attach(l: ConsoleListener): () => void {
    const h = this.history();
    if (h.length > 0) l.data(h);
    if (this.endReason !== null) {
      l.end(this.endReason);
      return () => {};
    }
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  end(reason: string): void {
    if (this.endReason !== null) return;
    this.endReason = reason;
    for (const l of this.listeners) l.end(reason);
    this.listeners.clear();
  }
}
