/**
 * Console output. Each domain has a buffer that collects its CONSOLEIO_write bytes and hands them
 * to a sink (the toolstack's `xl console`, a log file, a test). Everything also goes, prefixed
 * with "(dN) ", into the hypervisor's console ring, which a privileged domain reads with
 * CONSOLEIO_read (Xen's conring, `xl dmesg`).
 */

/** Bytes kept for a domain that has no sink yet, so early boot output is not lost. */
const DOMAIN_HISTORY_BYTES = 64 * 1024;
/** A partial line is flushed once it reaches this length even without a newline. */
const LINE_FLUSH_BYTES = 1024;

export type ConsoleSink = (bytes: Uint8Array) => void;

/** A bounded byte ring: writes overwrite the oldest bytes; reads consume. */
export class ByteRing {
  private readonly buf: Uint8Array;
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  write(bytes: Uint8Array): void {
    for (const b of bytes) {
      this.buf[(this.head + this.size) % this.capacity] = b;
      if (this.size < this.capacity) this.size++;
      else this.head = (this.head + 1) % this.capacity;
    }
  }

  /** Removes and returns up to `max` of the oldest bytes. */
  read(max: number): Uint8Array {
    const n = Math.max(0, Math.min(max, this.size));
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.buf[(this.head + i) % this.capacity]!;
    this.head = (this.head + n) % this.capacity;
    this.size -= n;
    return out;
  }

  /** The current contents without consuming them. */
  peek(): Uint8Array {
    const out = new Uint8Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.buf[(this.head + i) % this.capacity]!;
    return out;
  }
}

/**
 * One domain's console output. The hardware domain's bytes pass through untouched; other
 * domains' bytes are filtered to printable ASCII, tab and newline (Xen does the same so a guest
 * cannot drive the host terminal with escape sequences) and sent a line at a time.
 */
export class DomainConsole {
  private sink: ConsoleSink | null = null;
  private readonly history = new ByteRing(DOMAIN_HISTORY_BYTES);
  private line: number[] = [];

  constructor(
    private readonly domid: number,
    private readonly raw: boolean,
    private readonly ring: ByteRing,
  ) {}

  /** Installs the sink; bytes buffered so far are delivered to it first. */
  setSink(sink: ConsoleSink | null): void {
    this.sink = sink;
    if (sink !== null && this.history.length > 0) sink(this.history.read(this.history.length));
  }

  write(bytes: Uint8Array): void {
    if (this.raw) {
      this.emit(bytes);
      return;
    }
    for (const b of bytes) {
      if (b === 0x0a || b === 0x09 || (b >= 0x20 && b < 0x7f)) this.line.push(b);
      if (b === 0x0a || this.line.length >= LINE_FLUSH_BYTES) this.flush();
    }
  }

  /** Sends a partial line now (e.g. when the domain dies). */
  flush(): void {
    if (this.line.length === 0) return;
    const out = Uint8Array.from(this.line);
    this.line = [];
    this.emit(out);
  }

  private emit(bytes: Uint8Array): void {
    this.ring.write(new TextEncoder().encode(`(d${this.domid}) `));
    this.ring.write(bytes);
    if (this.sink !== null) this.sink(bytes);
    else this.history.write(bytes);
  }
}
