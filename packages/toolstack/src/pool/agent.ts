/**
 * A host's membership of a pool: it accepts links from hosts that prove the pool secret, joins a
 * pool through any member (and then links to every member that one knows: a full mesh), keeps
 * every link alive with heartbeats and drops a member it no longer hears from. Refusals and losses
 * are logged on the side that sees them; the host and its domains run on regardless.
 */
import WebSocket from "ws";
import { LibxlError } from "../libxl/errors.js";
import { PoolLink, wsBytes } from "./link.js";
import {
  decodeLinkMsg,
  encodeLinkMsg,
  type LinkMsg,
  linkMac,
  MAX_LINK_FRAME_BYTES,
  type MemberAddr,
  macEqual,
  newNonce,
} from "./link_protocol.js";

/** The path of the pool link on a host's WebSocket listener (its management endpoint is "/"). */
export const POOL_LINK_PATH = "/pool";

/** How long a lost member is tried again before it is given up. */
const RELINK_MS = 60_000;
/** How long --join keeps trying a member that does not answer yet. */
const JOIN_RETRY_MS = 10_000;

export interface PoolAgentOptions {
  /** This host's name in the pool (unique among members). */
  readonly name: string;
  /** Its management URL (ws://host:port): where members and xl reach it. */
  readonly url: string;
  readonly secret: Uint8Array;
  /** Heartbeat interval (ms, default 1000); a member silent for 4 intervals is dropped. */
  readonly heartbeatMs?: number;
  /** How long a handshake may take (ms, default 5000). */
  readonly handshakeMs?: number;
  readonly log: (line: string) => void;
  /** Requests from members, by op. */
  readonly ops: Readonly<Record<string, (link: PoolLink, args: Readonly<Record<string, unknown>>) => unknown>>;
  /** Migration data from a member. */
  readonly data?: (link: PoolLink, mig: number, bytes: Uint8Array) => void;
  /** An Ethernet frame from a member's switch. */
  readonly frame?: (link: PoolLink, frame: Uint8Array) => void;
}

export interface MemberInfo {
  readonly host: string;
  readonly url: string;
  readonly self: boolean;
  /** ms since anything was heard from it (0 for this host). */
  readonly silentMs: number;
}

/** "HOST:PORT", "ws://HOST:PORT" or "ws://HOST:PORT/pool" -> the management URL ws://HOST:PORT. */
export function memberUrl(addr: string): string {
  const withScheme = /^wss?:\/\//.test(addr) ? addr : `ws://${addr}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new LibxlError("EINVAL", `'${addr}' is not a host address (HOST:PORT or ws://HOST:PORT)`);
  }
  if (u.port === "") throw new LibxlError("EINVAL", `'${addr}' has no port`);
  return `${u.protocol}//${u.host}`;
}

export class PoolAgent {
  private readonly links = new Map<string, PoolLink>();
  private readonly closeListeners = new Set<(link: PoolLink, reason: string) => void>();
  private readonly openListeners = new Set<(link: PoolLink) => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly hbMs: number;
  private readonly handshakeMs: number;
  private closed = false;

  constructor(private readonly opts: PoolAgentOptions) {
    this.hbMs = opts.heartbeatMs ?? 1000;
    this.handshakeMs = opts.handshakeMs ?? 5000;
    this.timer = setInterval(() => this.tick(), this.hbMs);
    this.timer.unref();
  }

  get name(): string {
    return this.opts.name;
  }

  get url(): string {
    return this.opts.url;
  }

  /** Called when a link to a member is up (authenticated both ways), and for those up already. */
  onLinkOpened(l: (link: PoolLink) => void): () => void {
    this.openListeners.add(l);
    for (const link of this.links.values()) l(link);
    return () => this.openListeners.delete(l);
  }

  private opened(link: PoolLink): void {
    for (const l of this.openListeners) {
      try {
        l(link);
      } catch (e) {
        this.opts.log(`pool: link to ${link.peer}: ${(e as Error).message}`);
      }
    }
  }

  /** Called when any link goes down (migrations in flight watch this). */
  onLinkClosed(l: (link: PoolLink, reason: string) => void): () => void {
    this.closeListeners.add(l);
    return () => this.closeListeners.delete(l);
  }

  members(): MemberInfo[] {
    const now = Date.now();
    return [
      { host: this.name, url: this.url, self: true, silentMs: 0 },
      ...[...this.links.values()]
        .sort((a, b) => a.peer.localeCompare(b.peer))
        .map((l) => ({ host: l.peer, url: l.peerUrl, self: false, silentMs: now - l.lastHeard })),
    ];
  }

  /** The link to a member named by host name or URL. */
  link(ident: string): PoolLink {
    const direct = this.links.get(ident);
    if (direct !== undefined) return direct;
    let url: string | null = null;
    try {
      url = memberUrl(ident);
    } catch {
      // not an address: a name that is not a member
    }
    for (const l of this.links.values()) if (url !== null && l.peerUrl === url) return l;
    throw new LibxlError("ENOENT", `host '${ident}' is not a member of this pool`);
  }

  /** True if `ident` names this host itself. */
  isSelf(ident: string): boolean {
    if (ident === this.name) return true;
    try {
      return memberUrl(ident) === this.url;
    } catch {
      return false;
    }
  }

  private handlers() {
    return {
      request: (link: PoolLink, op: string, args: Readonly<Record<string, unknown>>) => {
        const h = Object.hasOwn(this.opts.ops, op) ? this.opts.ops[op] : undefined;
        if (h === undefined) throw new LibxlError("ENOSYS", `unknown pool op '${op}'`);
        return h(link, args);
      },
      data: (link: PoolLink, mig: number, bytes: Uint8Array) => this.opts.data?.(link, mig, bytes),
      frame: (link: PoolLink, frame: Uint8Array) => this.opts.frame?.(link, frame),
      closed: (link: PoolLink, reason: string) => {
        if (this.links.get(link.peer) === link) {
          this.links.delete(link.peer);
          if (!this.closed) {
            this.opts.log(`pool: link to ${link.peer} (${link.peerUrl}) lost: ${reason}`);
            // One side re-links (the smaller name), so two attempts never cross.
            if (this.name < link.peer) this.relink(link.peer, link.peerUrl);
          }
        }
        for (const l of this.closeListeners) l(link, reason);
      },
    };
  }

  private addrs(except: string): MemberAddr[] {
    return [...this.links.values()].filter((l) => l.peer !== except).map((l) => ({ host: l.peer, url: l.peerUrl }));
  }

  /** The acceptor's half of the handshake, on a connection to POOL_LINK_PATH. */
  accept(ws: WebSocket, remote: string): void {
    const sNonce = newNonce();
    const refuse = (why: string, toPeer: string) => {
      this.opts.log(`pool: refused a link from ${remote}: ${why}`);
      if (ws.readyState === ws.OPEN) {
        ws.send(encodeLinkMsg({ t: "refused", reason: toPeer }));
        ws.close(4001, toPeer.slice(0, 120));
      }
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    const timer = setTimeout(
      () => refuse(`no authentication within ${this.handshakeMs} ms`, "authentication timed out"),
      this.handshakeMs,
    );
    ws.on("error", () => ws.terminate());
    ws.once("close", () => clearTimeout(timer));
    ws.once("message", (data, isBinary) => {
      clearTimeout(timer);
      let msg: LinkMsg;
      try {
        if (!isBinary) throw new Error("a text frame");
        msg = decodeLinkMsg(wsBytes(data));
      } catch (e) {
        refuse(`not a pool handshake (${(e as Error).message})`, "authentication failed");
        return;
      }
      if (msg.t !== "auth") {
        refuse(`'${msg.t}' instead of auth`, "authentication failed");
        return;
      }
      if (!macEqual(msg.mac, linkMac(this.opts.secret, "auth", sNonce, msg.nonce, msg.host))) {
        refuse(`host '${msg.host}' failed to prove the pool secret (wrong secret)`, "authentication failed");
        return;
      }
      if (this.closed) {
        refuse("this host is shutting down", "host shutting down");
        return;
      }
      if (msg.host === this.name || this.links.has(msg.host)) {
        refuse(`host name '${msg.host}' is already in the pool`, `host name '${msg.host}' is already in the pool`);
        return;
      }
      const mac = linkMac(this.opts.secret, "welcome", msg.nonce, sNonce, this.name);
      ws.send(encodeLinkMsg({ t: "welcome", host: this.name, url: this.url, mac, members: this.addrs(msg.host) }));
      const link = new PoolLink(ws, msg.host, msg.url, this.handlers());
      this.links.set(msg.host, link);
      this.opts.log(`pool: host ${msg.host} (${msg.url}) linked`);
      this.opened(link);
    });
    ws.send(encodeLinkMsg({ t: "challenge", v: 1, host: this.name, nonce: sNonce }));
  }

  /** The connector's half: a link to the member at `addr`, and the members it knows. */
  private connect(
    addr: string,
    /** Failures not logged: unreachable ones (a join still waiting for its member), or all (re-links). */
    quiet: "none" | "unreachable" | "all" = "none",
  ): Promise<{ link: PoolLink; members: readonly MemberAddr[] }> {
    const url = memberUrl(addr);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}${POOL_LINK_PATH}`, {
        handshakeTimeout: this.handshakeMs,
        maxPayload: MAX_LINK_FRAME_BYTES,
        // Masking guards caches and proxies on the way from browsers; a host-to-host link has
        // none, and an all-zero mask lets ws skip XOR-ing (and copying) every migration byte.
        generateMask: (mask: Buffer) => {
          mask.fill(0);
        },
      });
      const cNonce = newNonce();
      let sNonce: Uint8Array | null = null;
      let serverName = "";
      let settled = false;
      /** code ECONNREFUSED: nothing answered (worth trying again); EACCES: the peer refused. */
      const fail = (why: string, code = "EACCES") => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (quiet === "none" || (quiet === "unreachable" && code !== "ECONNREFUSED"))
          this.opts.log(`pool: link to ${url} failed: ${why}`);
        ws.terminate();
        reject(new LibxlError(code, `cannot link to ${url}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no handshake within ${this.handshakeMs} ms`), this.handshakeMs);
      const onError = (e: Error) => fail(e.message, sNonce === null ? "ECONNREFUSED" : "EACCES");
      const onClose = (code: number, reason: Buffer) =>
        fail(`closed during the handshake (${code} ${reason.toString()})`);
      ws.on("error", onError);
      ws.on("close", onClose);
      const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
        let msg: LinkMsg;
        try {
          if (!isBinary) throw new Error("a text frame");
          msg = decodeLinkMsg(wsBytes(data));
        } catch (e) {
          fail(`not a pool member (${(e as Error).message})`);
          return;
        }
        if (msg.t === "refused") {
          fail(`refused by the host: ${msg.reason}`);
          return;
        }
        if (sNonce === null) {
          if (msg.t !== "challenge") {
            fail(`'${msg.t}' instead of a challenge`);
            return;
          }
          sNonce = msg.nonce;
          serverName = msg.host;
          const mac = linkMac(this.opts.secret, "auth", sNonce, cNonce, this.name);
          ws.send(encodeLinkMsg({ t: "auth", host: this.name, url: this.url, nonce: cNonce, mac }));
          return;
        }
        if (msg.t !== "welcome" || msg.host !== serverName) {
          fail(`'${msg.t}' instead of a welcome from ${serverName}`);
          return;
        }
        if (!macEqual(msg.mac, linkMac(this.opts.secret, "welcome", cNonce, sNonce, msg.host))) {
          fail(`host '${msg.host}' failed to prove the pool secret (wrong secret)`);
          return;
        }
        if (this.links.has(msg.host) || msg.host === this.name) {
          fail(`host name '${msg.host}' is already linked`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        ws.off("message", onMessage);
        ws.off("error", onError);
        ws.off("close", onClose);
        const link = new PoolLink(ws, msg.host, url, this.handlers());
        this.links.set(msg.host, link);
        this.opts.log(`pool: linked to host ${msg.host} (${url})`);
        this.opened(link);
        resolve({ link, members: msg.members });
      };
      ws.on("message", onMessage);
    });
  }

  /**
   * Joins the pool that `addr` is a member of: links to it, then to every member it knows
   * (members that cannot be reached are logged and skipped; heartbeats sort out the rest).
   */
  async join(addr: string): Promise<void> {
    if (this.isSelf(addr)) throw new LibxlError("EINVAL", "a host cannot join itself");
    // A member that is still starting (nothing listens yet) is tried again for a while.
    const end = Date.now() + JOIN_RETRY_MS;
    let joined: { members: readonly MemberAddr[] } | null = null;
    while (joined === null) {
      const last = Date.now() > end;
      try {
        joined = await this.connect(addr, last ? "none" : "unreachable");
      } catch (e) {
        if (last || !(e instanceof LibxlError) || e.code !== "ECONNREFUSED") throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const { members } = joined;
    await Promise.all(
      members
        .filter((m) => m.host !== this.name && !this.links.has(m.host))
        .map((m) => this.connect(m.url).catch(() => undefined)),
    );
  }

  /** Tries to link to a lost member again, quietly, every second for RELINK_MS. */
  private relink(peer: string, url: string): void {
    const end = Date.now() + RELINK_MS;
    const attempt = () => {
      if (this.closed || this.links.has(peer)) return;
      if (Date.now() > end) {
        this.opts.log(`pool: gave up re-linking to ${peer} (${url})`);
        return;
      }
      this.connect(url, "all").catch(() => setTimeout(attempt, 1000).unref());
    };
    setTimeout(attempt, 1000).unref();
  }

  private tick(): void {
    const now = Date.now();
    const deadMs = this.hbMs * 4;
    for (const l of [...this.links.values()]) {
      const silent = now - l.lastHeard;
      if (silent > deadMs) {
        this.opts.log(`pool: host ${l.peer} (${l.peerUrl}) is dead: nothing heard for ${silent} ms; dropped`);
        l.terminate(`no heartbeat for ${silent} ms`);
      } else l.heartbeat();
    }
  }

  /** Leaves the pool: every link closed with a reason. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const l of [...this.links.values()]) l.close("host shutting down");
  }
}
