/**
 * The XenStore daemon: connections, dispatch of every 4.17 message type, domains, watches,
 * transactions and quotas over one shared tree. It is transport-agnostic and synchronous: a
 * request is answered (or queued behind a stalled client) before `receive` returns.
 *
 * Invariants:
 * - replies to one connection leave in request order; watch events are queued on the same
 *   connection queue, so ordering between a reply and the events it caused is stable;
 * - a connection with `outstanding` ≥ quota undelivered replies is not read from (its input
 *   waits in `input`), which never blocks another connection;
 * - a failed request changes nothing (store operations check before they mutate).
 */
import type { ConnectionIdentity, XsConnector, XsPort, XsTransport } from "./domain_conn.js";
import { XsParser, XsStreamError } from "./parser.js";
import {
  type Acl,
  formatPerm,
  isOwner,
  PERM_NONE,
  PERM_READ,
  type Principal,
  parsePerm,
  rightsOf,
} from "./permissions.js";
import { DEFAULT_MAX_TRANSACTIONS_TOTAL, type Quotas, quotaApplies, resolveQuotas } from "./quota.js";
import {
  type Change,
  getAcl,
  listChildren,
  type NodeView,
  readValue,
  removeNode,
  Store,
  setAcl,
  writeNode,
} from "./store.js";
import { Transaction } from "./transaction.js";
import { isSpecial, type SpecialWatch, WatchList } from "./watch.js";
import {
  encodeMessage,
  nulStrings,
  splitPayload,
  XENSTORE_ABS_PATH_MAX,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_REL_PATH_MAX,
  XS_TYPES,
  XsError,
  type XsMessage,
  xsTypeName,
} from "./wire.js";

/** Lets a ring transport attach when the toolstack introduces a domain (INTRODUCE / RELEASE). */
export interface DomainChannelFactory {
  /** Called once per newly introduced domain; typically maps the ring and calls `connectDomain`. */
  introduce(domid: number, gfn: bigint, evtchn: number): void;
  /** Called when the domain is released; its connection has already been closed. */
  release(domid: number): void;
}

export interface XenstoredOptions {
  quotas?: Partial<Quotas>;
  /** Open transactions over all connections (→ ENOSPC beyond). */
  maxTransactionsTotal?: number;
  /**
   * Whether a domain exists, for SET_PERMS (entries naming absent domains are kept but ignored;
   * an absent owner is ENOENT). Without a hypervisor to ask, the default says every domain exists.
   */
  domainExists?: (domid: number) => boolean;
  domainChannels?: DomainChannelFactory;
  /** A watch event not taken by its client within this many ms is dropped (C daemon: `-w watch-event=`, 20 s). */
  watchEventTimeoutMs?: number;
  /** Watch events held for an unprivileged connection that is not reading; more are dropped (default 1024, oxenstored's figure). */
  maxQueuedEvents?: number;
  /** Clock for event ageing (tests inject one). */
  now?: () => number;
  /** Daemon log lines (CONTROL print/log, dropped connections). */
  log?: (line: string) => void;
}

interface DomainRecord {
  readonly domid: number;
  introduced: boolean;
  gfn?: bigint;
  evtchn?: number;
  target?: number;
  conn?: Connection;
  /** Which introduction this is (a growing count): a release decided about an earlier one must not hit it. */
  introduction?: number;
}

const OK = nulStrings("OK");
const RELEASED = "domain released";
const DEFAULT_WATCH_EVENT_TIMEOUT_MS = 20_000;
const DOMID_FIRST_RESERVED = 0x7ff0;
const VALID_PATH = /^[A-Za-z0-9\-/_]+$/;

class Connection implements XsPort {
  readonly parser = new XsParser();
  readonly watches: WatchList;
  readonly transactions = new Map<number, Transaction>();
  readonly home: string;
  /** Parsed requests not yet handled (only non-empty while stalled). */
  readonly input: XsMessage[] = [];
  /** Replies and events not yet taken by the transport, in order; `at` is when it was queued. */
  readonly output: { bytes: Uint8Array; reply: boolean; at: number }[] = [];
  /** Replies queued but not yet taken by the transport. */
  outstanding = 0;
  nextTxId = 1;
  isClosed = false;

  constructor(
    private readonly daemon: Xenstored,
    readonly transport: XsTransport,
    readonly domid: number,
    readonly privileged: boolean,
  ) {
    this.home = `/local/domain/${domid}`;
    this.watches = new WatchList(this.home);
  }

  get principal(): Principal {
    return { domid: this.domid, privileged: this.privileged, target: this.daemon.targetOf(this.domid) };
  }

  receive(bytes: Uint8Array): void {
    if (this.isClosed) return;
    let failure: XsStreamError | undefined;
    try {
      this.input.push(...this.parser.feed(bytes));
    } catch (e) {
      if (!(e instanceof XsStreamError)) throw e;
      // Requests that arrived whole before the bad header are answered first, as a daemon
      // reading one message at a time would.
      this.input.push(...e.messages);
      failure = e;
    }
    this.daemon.pump(this);
    if (failure) this.daemon.drop(this, failure.message);
  }

  get backlog(): number {
    return this.input.length;
  }

  writable(): void {
    this.daemon.flush(this);
    this.daemon.pump(this);
  }

  closed(): void {
    this.daemon.forget(this);
  }
}

export class Xenstored implements XsConnector {
  readonly store = new Store();
  readonly quotas: Quotas;
  private readonly conns = new Set<Connection>();
  private readonly domains = new Map<number, DomainRecord>();
  private introductions = 0;
  private readonly specialAcls = new Map<SpecialWatch, Acl>([
    ["@introduceDomain", [{ domid: 0, bits: PERM_NONE }]],
    ["@releaseDomain", [{ domid: 0, bits: PERM_NONE }]],
  ]);
  private readonly maxTxTotal: number;
  private txTotal = 0;
  private readonly log: (line: string) => void;
  private pumping = new Set<Connection>();
  private readonly eventTimeoutMs: number;
  private readonly maxQueuedEvents: number;
  private readonly now: () => number;

  constructor(private readonly options: XenstoredOptions = {}) {
    this.quotas = resolveQuotas(options.quotas);
    this.maxTxTotal = options.maxTransactionsTotal ?? DEFAULT_MAX_TRANSACTIONS_TOTAL;
    this.log = options.log ?? (() => {});
    this.eventTimeoutMs = options.watchEventTimeoutMs ?? DEFAULT_WATCH_EVENT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.maxQueuedEvents = options.maxQueuedEvents ?? 1024;
    // The tree the C daemon starts with: everything owned by dom0, unreadable by others.
    const dom0: Principal = { domid: 0, privileged: true };
    for (const p of ["/local/domain", "/tool/xenstored"]) writeNode(this.store, dom0, this.quotas, p, undefined);
  }

  // ---- connections -------------------------------------------------------------------------

  connect(transport: XsTransport, who: ConnectionIdentity): XsPort {
    const c = new Connection(this, transport, who.domid, who.privileged);
    this.conns.add(c);
    return c;
  }

  /**
   * A domain's own connection (what a ring transport opens, or a port the toolstack binds to the
   * domain); dom0 is privileged, others only when the toolstack says so. RELEASE drops it.
   */
  connectDomain(domid: number, transport: XsTransport, privileged = domid === 0): XsPort {
    const port = this.connect(transport, { domid, privileged });
    const d = this.domain(domid);
    if (d.conn) this.drop(d.conn, "replaced by a new connection");
    d.conn = port as Connection;
    return port;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  targetOf(domid: number): number | undefined {
    return this.domains.get(domid)?.target;
  }

  /** Domains introduced and not yet released (dom0 excluded). */
  introducedDomains(): number[] {
    return [...this.domains.values()].filter((d) => d.introduced).map((d) => d.domid);
  }

  /**
   * A domain shut down but is not gone yet: watchers of @releaseDomain hear it now (as from the
   * C daemon), the domain itself is released once it is dying or gone.
   */
  domainShutdown(domid: number): void {
    if (this.domains.get(domid)?.introduced) this.fireSpecial("@releaseDomain");
  }

  /**
   * Identifies the current introduction of `domid` (undefined when not introduced): a caller that
   * looks the domain up asynchronously compares before acting, since the toolstack may have
   * released and introduced the domid again meanwhile (a restarted driver domain).
   */
  introductionOf(domid: number): number | undefined {
    const d = this.domains.get(domid);
    return d?.introduced === true ? d.introduction : undefined;
  }

  isIntroduced(domid: number): boolean {
    return domid === 0 || this.domains.get(domid)?.introduced === true;
  }

  /** Drops a connection for a protocol violation or release; the transport closes it. (Used by connections.) */
  drop(c: Connection, reason: string): void {
    if (c.isClosed) return;
    // A release is routine; anything else (protocol error, replaced ring) is worth a line.
    if (reason !== RELEASED) this.log(`xenstored: dropping connection of domain ${c.domid}: ${reason}`);
    this.forget(c);
    c.transport.close(reason);
  }

  /** Forgets a connection whose peer is gone. (Used by connections.) */
  forget(c: Connection): void {
    if (c.isClosed) return;
    c.isClosed = true;
    this.txTotal -= c.transactions.size;
    c.transactions.clear();
    c.watches.clear();
    c.input.length = 0;
    c.output.length = 0;
    this.conns.delete(c);
    const d = this.domains.get(c.domid);
    if (d?.conn === c) d.conn = undefined;
  }

  /** Handles queued input until it runs out or the connection stalls on outstanding replies. (Used by connections.) */
  pump(c: Connection): void {
    if (this.pumping.has(c)) return; // re-entered from flush inside a handler: the outer loop continues
    this.pumping.add(c);
    try {
      while (!c.isClosed && c.input.length > 0) {
        if (quotaApplies(c.principal) && c.outstanding >= this.quotas.outstanding) break;
        this.handle(c, c.input.shift()!);
      }
    } finally {
      this.pumping.delete(c);
    }
  }

  /** Offers queued output to the transport until it refuses. (Used by connections.) */
  flush(c: Connection): void {
    const now = this.now();
    while (!c.isClosed && c.output.length > 0) {
      const head = c.output[0]!;
      // Stale events are dropped (a client that does not read must not pin memory forever);
      // replies never are, the client is waiting for them.
      if (!head.reply && now - head.at > this.eventTimeoutMs) {
        c.output.shift();
        continue;
      }
      if (!c.transport.deliver(head.bytes)) break;
      c.output.shift();
      if (head.reply) c.outstanding--;
    }
  }

  private enqueue(c: Connection, bytes: Uint8Array, reply: boolean): void {
    if (c.isClosed) return;
    const now = this.now();
    if (!reply && quotaApplies(c.principal) && c.output.length - c.outstanding >= this.maxQueuedEvents) {
      // A domain that does not read must not make the daemon hold unbounded events for it:
      // first forget expired ones, then refuse the new one (events may be lost, replies never).
      const keep = c.output.filter((o) => o.reply || now - o.at <= this.eventTimeoutMs);
      c.output.splice(0, c.output.length, ...keep);
      if (c.output.length - c.outstanding >= this.maxQueuedEvents) {
        this.log(`xenstored: domain ${c.domid} has ${this.maxQueuedEvents} unread watch events; dropping one`);
        return;
      }
    }
    c.output.push({ bytes, reply, at: now });
    if (reply) c.outstanding++;
    this.flush(c);
  }

  /** Replies never exceed XENSTORE_PAYLOAD_MAX: a bigger answer is E2BIG, as in the C daemon. */
  private reply(c: Connection, m: XsMessage, payload: Uint8Array): void {
    if (payload.length > XENSTORE_PAYLOAD_MAX)
      this.enqueue(c, encodeMessage(XS_TYPES.ERROR, m.reqId, m.txId, nulStrings("E2BIG")), true);
    else this.enqueue(c, encodeMessage(m.type, m.reqId, m.txId, payload), true);
  }

  private event(c: Connection, path: string, token: string): void {
    const payload = nulStrings(path, token);
    if (payload.length > XENSTORE_PAYLOAD_MAX) {
      this.log(`xenstored: watch event for ${path.slice(0, 64)}... too long for domain ${c.domid}; dropped`);
      return;
    }
    this.enqueue(c, encodeMessage(XS_TYPES.WATCH_EVENT, 0, 0, payload), false);
  }

  private handle(c: Connection, m: XsMessage): void {
    try {
      const payload = this.dispatch(c, m);
      if (payload) this.reply(c, m, payload);
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      this.enqueue(c, encodeMessage(XS_TYPES.ERROR, m.reqId, m.txId, nulStrings(e.code)), true);
    }
  }

  // ---- watches -------------------------------------------------------------------------------

  /** Queues the events for a change that is now visible to everybody. */
  private fire(change: Change): void {
    for (const c of this.conns) {
      for (const ev of c.watches.eventsFor(change)) {
        if ((rightsOf(c.principal, ev.acl) & PERM_READ) === 0) continue;
        this.event(c, ev.path, ev.token);
      }
    }
  }

  private fireSpecial(name: SpecialWatch): void {
    this.fire({ path: name, acl: this.specialAcls.get(name)! });
  }

  // ---- request decoding ------------------------------------------------------------------------

  /** Exactly `n` NUL-terminated strings (or at least `n` when `atLeast`), nothing after them. */
  private args(m: XsMessage, n: number, atLeast = false): string[] {
    const { strings, rest } = splitPayload(m.payload);
    if (rest.length > 0 || strings.length < n || (!atLeast && strings.length !== n))
      throw new XsError("EINVAL", `${xsTypeName(m.type)} wants ${n} strings`);
    return strings;
  }

  /** Canonical absolute path; relative paths are below the connection's `/local/domain/<id>`. */
  private canon(c: Connection, p: string): string {
    const relative = !p.startsWith("/");
    if (p.length === 0 || !VALID_PATH.test(p)) throw new XsError("EINVAL", `bad path '${p}'`);
    if (relative && p.length > XENSTORE_REL_PATH_MAX) throw new XsError("EINVAL", "path too long");
    const abs = relative ? `${c.home}/${p}` : p;
    if (abs.includes("//") || (abs.length > 1 && abs.endsWith("/"))) throw new XsError("EINVAL", `bad path '${p}'`);
    if (abs.length > XENSTORE_ABS_PATH_MAX) throw new XsError("EINVAL", "path too long");
    if (quotaApplies(c.principal)) {
      const local = abs.startsWith(`${c.home}/`) ? abs.length - c.home.length - 1 : abs.length;
      if (local > this.quotas.pathLength) throw new XsError("EINVAL", "path too long");
    }
    return abs;
  }

  private domidArg(s: string): number {
    if (!/^\d{1,5}$/.test(s)) throw new XsError("EINVAL", `bad domid '${s}'`);
    const d = Number(s);
    if (d >= DOMID_FIRST_RESERVED) throw new XsError("EINVAL", `bad domid '${s}'`);
    return d;
  }

  private view(c: Connection, txId: number): { view: NodeView; tx?: Transaction } {
    if (txId === 0) return { view: this.store };
    const tx = c.transactions.get(txId);
    if (!tx) throw new XsError("ENOENT", `no transaction ${txId}`);
    return { view: tx, tx };
  }

  /** A change made through `tx` fires at commit; one made directly fires now. */
  private changed(tx: Transaction | undefined, change: Change | undefined): void {
    if (!change) return;
    if (tx) tx.changes.push(change);
    else this.fire(change);
  }

  private requirePrivileged(c: Connection): void {
    if (!c.privileged) throw new XsError("EACCES", "privileged operation");
  }

  // ---- dispatch ------------------------------------------------------------------------------

  /** Returns the success payload, or undefined when the handler replied itself. */
  private dispatch(c: Connection, m: XsMessage): Uint8Array | undefined {
    const who = c.principal;
    switch (m.type) {
      case XS_TYPES.READ: {
        const [p] = this.args(m, 1);
        return readValue(this.view(c, m.txId).view, who, this.canon(c, p!));
      }
      case XS_TYPES.DIRECTORY: {
        const [p] = this.args(m, 1);
        const node = listChildren(this.view(c, m.txId).view, who, this.canon(c, p!));
        const out = nulStrings(...node.children);
        if (out.length > XENSTORE_PAYLOAD_MAX) throw new XsError("E2BIG", "use DIRECTORY_PART");
        return out;
      }
      case XS_TYPES.DIRECTORY_PART:
        return this.directoryPart(c, m);
      case XS_TYPES.GET_PERMS: {
        const [p] = this.args(m, 1);
        const acl = isSpecial(p!)
          ? this.specialAcls.get(p)!
          : getAcl(this.view(c, m.txId).view, who, this.canon(c, p!));
        return nulStrings(...acl.map(formatPerm));
      }
      case XS_TYPES.WRITE: {
        const { strings } = splitPayload(m.payload);
        if (strings.length === 0) throw new XsError("EINVAL", "WRITE wants path\\0value");
        // The value is everything after the first NUL, NULs included.
        const pathLen = strings[0]!.length + 1;
        const value = m.payload.slice(pathLen);
        const { view, tx } = this.view(c, m.txId);
        this.changed(tx, writeNode(view, who, this.quotas, this.canon(c, strings[0]!), value));
        return OK;
      }
      case XS_TYPES.MKDIR: {
        const [p] = this.args(m, 1);
        const { view, tx } = this.view(c, m.txId);
        this.changed(tx, writeNode(view, who, this.quotas, this.canon(c, p!), undefined));
        return OK;
      }
      case XS_TYPES.RM: {
        const [p] = this.args(m, 1);
        const { view, tx } = this.view(c, m.txId);
        this.changed(tx, removeNode(view, who, this.canon(c, p!)));
        return OK;
      }
      case XS_TYPES.SET_PERMS:
        return this.setPerms(c, m);
      case XS_TYPES.WATCH:
        this.watch(c, m);
        return undefined;
      case XS_TYPES.UNWATCH: {
        const [p, token] = this.args(m, 2);
        c.watches.remove(isSpecial(p!) ? p! : this.canon(c, p!), token!);
        return OK;
      }
      case XS_TYPES.TRANSACTION_START:
        return this.transactionStart(c, m);
      case XS_TYPES.TRANSACTION_END:
        return this.transactionEnd(c, m);
      case XS_TYPES.GET_DOMAIN_PATH: {
        const [d] = this.args(m, 1);
        return nulStrings(`/local/domain/${this.domidArg(d!)}`);
      }
      case XS_TYPES.INTRODUCE:
        return this.introduce(c, m);
      case XS_TYPES.RELEASE: {
        this.requirePrivileged(c);
        const [d] = this.args(m, 1);
        const domid = this.domidArg(d!);
        if (domid === 0) throw new XsError("EINVAL", "cannot release dom0");
        if (!this.isIntroduced(domid)) throw new XsError("ENOENT", `domain ${domid} not introduced`);
        this.release(domid);
        return OK;
      }
      case XS_TYPES.IS_DOMAIN_INTRODUCED: {
        this.requirePrivileged(c);
        const [d] = this.args(m, 1);
        return nulStrings(this.isIntroduced(this.domidArg(d!)) ? "T" : "F");
      }
      case XS_TYPES.RESUME: {
        this.requirePrivileged(c);
        const [d] = this.args(m, 1);
        if (!this.isIntroduced(this.domidArg(d!))) throw new XsError("ENOENT", `domain ${d} not introduced`);
        return OK;
      }
      case XS_TYPES.SET_TARGET: {
        this.requirePrivileged(c);
        const [d, t] = this.args(m, 2);
        const domid = this.domidArg(d!);
        const target = this.domidArg(t!);
        const rec = this.domains.get(domid);
        if (!rec) throw new XsError("ENOENT", `domain ${domid} unknown`);
        if (!this.domains.has(target) && target !== 0) throw new XsError("ENOENT", `domain ${target} unknown`);
        rec.target = target;
        return OK;
      }
      case XS_TYPES.RESET_WATCHES:
        c.watches.clear();
        this.txTotal -= c.transactions.size;
        c.transactions.clear();
        return OK;
      case XS_TYPES.CONTROL:
        return this.control(c, m);
      default:
        // WATCH_EVENT and ERROR only go daemon → client; 20, ≥ 23 and XS_INVALID are unknown.
        throw new XsError("EINVAL", `unknown message type ${m.type}`);
    }
  }

  private directoryPart(c: Connection, m: XsMessage): Uint8Array {
    const [p, offStr] = this.args(m, 2);
    if (!/^\d+$/.test(offStr!)) throw new XsError("EINVAL", `bad offset '${offStr}'`);
    const off = Number(offStr);
    const node = listChildren(this.view(c, m.txId).view, c.principal, this.canon(c, p!));
    const gen = Buffer.from(`${node.gen.toString(16)}\0`, "latin1");
    const all = Buffer.from(node.children.map((n) => `${n}\0`).join(""), "latin1");
    if (off >= all.length) return Buffer.concat([gen, Buffer.from([0])]);
    // Whole names only, as many as fit; a final empty string marks that the list is complete.
    const max = XENSTORE_PAYLOAD_MAX - gen.length - 1;
    let len = 0;
    while (off + len < all.length) {
      const end = all.indexOf(0, off + len);
      const next = end + 1 - off;
      if (next > max) break;
      len = next;
    }
    const parts = [gen, all.subarray(off, off + len)];
    if (off + len === all.length) parts.push(Buffer.from([0]));
    return Buffer.concat(parts);
  }

  private setPerms(c: Connection, m: XsMessage): Uint8Array {
    const [p, ...permStrings] = this.args(m, 2, true);
    let acl: Acl = permStrings.map(parsePerm);
    const exists = this.options.domainExists;
    if (exists) {
      acl = acl.map((e) => (exists(e.domid) ? e : { ...e, ignored: true }));
      if (acl[0]!.ignored) throw new XsError("ENOENT", `owner domain ${acl[0]!.domid} does not exist`);
    }
    if (isSpecial(p!)) {
      const old = this.specialAcls.get(p)!;
      if (!isOwner(c.principal, old)) throw new XsError("EACCES", p);
      this.specialAcls.set(p, acl);
      return OK;
    }
    const { view, tx } = this.view(c, m.txId);
    this.changed(tx, setAcl(view, c.principal, this.quotas, this.canon(c, p!), acl));
    return OK;
  }

  private watch(c: Connection, m: XsMessage): void {
    // 4.17 reads two strings; a third (depth, documented for later versions) is ignored.
    const [p, token] = this.args(m, 2, true);
    let abs: string;
    if (isSpecial(p!)) abs = p!;
    else if (p!.startsWith("@")) throw new XsError("EINVAL", `unknown special watch '${p}'`);
    else abs = this.canon(c, p!);
    if (quotaApplies(c.principal) && this.watchesOf(c.domid) > this.quotas.watches)
      throw new XsError("E2BIG", "too many watches");
    c.watches.add({ path: p!, abs, token: token!, relative: !p!.startsWith("/") && !isSpecial(p!) });
    this.reply(c, m, OK);
    // The registration event: lets the client read the initial state without a race.
    this.event(c, p!, token!);
  }

  private transactionStart(c: Connection, m: XsMessage): Uint8Array {
    if (m.txId !== 0) throw new XsError("EBUSY", "nested transaction");
    const limited = quotaApplies(c.principal);
    if (limited && c.transactions.size > this.quotas.transactions) throw new XsError("ENOSPC", "too many transactions");
    if (this.txTotal >= this.maxTxTotal) throw new XsError("ENOSPC", "too many transactions in the daemon");
    let id = c.nextTxId;
    while (id === 0 || c.transactions.has(id)) id = (id + 1) >>> 0;
    c.nextTxId = (id + 1) >>> 0;
    c.transactions.set(id, new Transaction(id, this.store, limited ? this.quotas.transactionNodes : Infinity));
    this.txTotal++;
    return nulStrings(String(id));
  }

  private transactionEnd(c: Connection, m: XsMessage): Uint8Array {
    const [how] = this.args(m, 1);
    if (how !== "T" && how !== "F") throw new XsError("EINVAL", `bad transaction end '${how}'`);
    const tx = c.transactions.get(m.txId);
    if (!tx) throw new XsError("ENOENT", `no transaction ${m.txId}`);
    // The id is dead after END whatever the outcome.
    c.transactions.delete(m.txId);
    this.txTotal--;
    if (how === "T") for (const change of tx.commit()) this.fire(change);
    return OK;
  }

  /** Watches held by all connections of a domain (the quota is per domain). */
  private watchesOf(domid: number): number {
    let n = 0;
    for (const c of this.conns) if (c.domid === domid) n += c.watches.size;
    return n;
  }

  private domain(domid: number): DomainRecord {
    let d = this.domains.get(domid);
    if (!d) {
      d = { domid, introduced: false };
      this.domains.set(domid, d);
    }
    return d;
  }

  private introduce(c: Connection, m: XsMessage): Uint8Array {
    this.requirePrivileged(c);
    const [d, gfnStr, portStr] = this.args(m, 3);
    const domid = this.domidArg(d!);
    if (!/^-?\d+$/.test(gfnStr!) || !/^\d+$/.test(portStr!)) throw new XsError("EINVAL", "bad gfn or event channel");
    const gfn = BigInt(gfnStr!);
    const evtchn = Number(portStr);
    if (domid === 0) return OK; // dom0 is always there
    const rec = this.domain(domid);
    if (rec.introduced) {
      if (rec.gfn !== gfn || rec.evtchn !== evtchn) throw new XsError("EINVAL", `domain ${domid} already introduced`);
      return OK;
    }
    rec.introduced = true;
    rec.introduction = ++this.introductions;
    rec.gfn = gfn;
    rec.evtchn = evtchn;
    // Bookkeeping home: owned by dom0, readable by the domain (as libxl makes it).
    const home = `/local/domain/${domid}`;
    if (!this.store.get(home)) {
      const dom0: Principal = { domid: 0, privileged: true };
      writeNode(this.store, dom0, this.quotas, home, undefined);
      const acl: Acl = [
        { domid: 0, bits: PERM_NONE },
        { domid, bits: PERM_READ },
      ];
      this.fire(setAcl(this.store, dom0, this.quotas, home, acl));
    }
    this.options.domainChannels?.introduce(domid, gfn, evtchn);
    this.fireSpecial("@introduceDomain");
    return OK;
  }

  /**
   * Forgets a domain: closes its connection, deletes the nodes it owns and its home, scrubs it
   * from other ACLs (a later domain with the same id must not inherit its rights), then fires
   * @releaseDomain.
   */
  release(domid: number): void {
    const rec = this.domains.get(domid);
    if (rec?.conn) this.drop(rec.conn, RELEASED);
    this.domains.delete(domid);
    for (const r of this.domains.values()) if (r.target === domid) r.target = undefined;
    const dom0: Principal = { domid: 0, privileged: true };
    const owned: string[] = [];
    for (const p of this.store.paths()) {
      const n = this.store.get(p)!;
      if (p !== "/" && n.acl[0]?.domid === domid) owned.push(p);
    }
    owned.push(`/local/domain/${domid}`);
    for (const p of owned) if (this.store.get(p)) this.fire(removeNode(this.store, dom0, p)!);
    for (const p of [...this.store.paths()]) {
      const n = this.store.get(p)!;
      if (n.acl.slice(1).some((e) => e.domid === domid))
        this.store.set(p, { ...n, acl: [n.acl[0]!, ...n.acl.slice(1).filter((e) => e.domid !== domid)] });
    }
    for (const [name, acl] of this.specialAcls)
      this.specialAcls.set(name, [acl[0]!, ...acl.slice(1).filter((e) => e.domid !== domid)]);
    this.options.domainChannels?.release(domid);
    this.fireSpecial("@releaseDomain");
  }

  private control(c: Connection, m: XsMessage): Uint8Array {
    this.requirePrivileged(c);
    const [cmd, ...rest] = this.args(m, 1, true);
    switch (cmd) {
      case "print":
      case "log":
        this.log(`xenstored: ${rest.join(" ")}`);
        return OK;
      case "help":
        return nulStrings("print <text>\nlog <text>\nhelp\nquota\n");
      case "quota":
        return nulStrings(
          Object.entries(this.quotas)
            .map(([k, v]) => `${k} ${v}`)
            .join("\n"),
        );
      default:
        throw new XsError("EINVAL", `unknown control command '${cmd}'`);
    }
  }
}
