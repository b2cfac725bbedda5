/**
 * The host's management endpoint: a WebSocket server (ws) whose binary messages are msgpack
 * requests to the libxl API (PROTOCOL.md). Each connection may have many requests in flight;
 * console and event streams run until the client cancels them, closes, or the thing ends. Bad
 * frames and failed operations get error replies; nothing a client sends can stop the host.
 */

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { type NetworkInterfaceInfo, networkInterfaces } from "node:os";
import { isAbsolute } from "node:path";
import { type WebSocket, WebSocketServer } from "ws";
import { LibxlError } from "../libxl/errors.js";
import type { DomainIdent, Libxl } from "../libxl/libxl.js";
import type { DomainConfig } from "../libxl/types.js";
import {
  decodeRequest,
  encodeFrame,
  MGMT_CLOSE_NO_TOKEN,
  ProtocolError,
  type Reply,
  type Request,
} from "./protocol.js";

/** Console bytes per data message, so one chatty domain cannot make a frame too big. */
const STREAM_CHUNK = 16 * 1024;

type Args = Readonly<Record<string, unknown>>;

class ArgError extends LibxlError {
  constructor(message: string) {
    super("EINVAL", message);
  }
}

function str(a: Args, k: string): string {
  const v = a[k];
  if (typeof v !== "string") throw new ArgError(`argument '${k}' must be a string`);
  return v;
}
function optStr(a: Args, k: string): string | undefined {
  return a[k] === undefined || a[k] === null ? undefined : str(a, k);
}
function optInt(a: Args, k: string): number | undefined {
  const v = a[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new ArgError(`argument '${k}' must be an integer`);
  return v;
}
function dom(a: Args, k = "dom"): DomainIdent {
  const v = a[k];
  if (typeof v === "string" || (typeof v === "number" && Number.isInteger(v) && v >= 0)) return v;
  throw new ArgError(`argument '${k}' must be a domain name or id`);
}
function strList(a: Args, k: string): string[] {
  const v = a[k] ?? [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new ArgError(`argument '${k}' must be a list of strings`);
  return v;
}
function vcpuArg(a: Args, k: string): number | "all" | undefined {
  const v = a[k];
  if (v === undefined || v === null) return undefined;
  if (v === "all") return "all";
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  throw new ArgError(`argument '${k}' must be a vcpu number or "all"`);
}

export interface Stream {
  /** Stops the stream (the client cancelled or went away). */
  close(): void;
}

interface Conn {
  readonly ws: WebSocket;
  readonly streams: Map<number, Stream>;
}

type Handler = (lx: Libxl, a: Args, c: Conn, id: number) => unknown;

const OPS: Record<string, Handler> = {
  hello: () => ({ protocol: 1, product: "xenon" }),
  "domain.create": async (lx, a) => {
    const cfg = a.config;
    if (typeof cfg !== "object" || cfg === null) throw new ArgError("argument 'config' must be a map");
    const domid = await lx.create(cfg as DomainConfig, { paused: a.paused === true });
    return { domid };
  },
  "domain.list": (lx, a) => lx.list(a.dom === undefined || a.dom === null ? undefined : dom(a)),
  "domain.domid": (lx, a) => lx.domid(dom(a)),
  "domain.destroy": (lx, a) => lx.destroy(dom(a)),
  "domain.pause": (lx, a) => lx.pause(dom(a)),
  "domain.unpause": (lx, a) => lx.unpause(dom(a)),
  "domain.shutdown": (lx, a) => lx.shutdown(dom(a)),
  "domain.reboot": (lx, a) => lx.reboot(dom(a)),
  "domain.console": (lx, a, c, id) => {
    const domid = lx.domid(dom(a));
    let detach: (() => void) | null = null;
    let open = true;
    const stop = () => {
      if (!open) return;
      open = false;
      detach?.();
      c.streams.delete(id);
    };
    c.streams.set(id, { close: stop });
    // Attach after the ok reply has gone out, so the history follows it.
    setImmediate(() => {
      if (!open) return;
      try {
        detach = lx.console(domid, {
          data: (bytes) => {
            for (let off = 0; off < bytes.length; off += STREAM_CHUNK)
              send(c.ws, { id, data: bytes.subarray(off, off + STREAM_CHUNK) });
          },
          end: (reason) => {
            send(c.ws, { id, end: reason });
            stop();
          },
        });
        if (!open) detach();
      } catch (e) {
        send(c.ws, { id, end: (e as Error).message });
        stop();
      }
    });
    return { streaming: true };
  },
  "events.subscribe": (lx, _a, c, id) => {
    const off = lx.onEvent((e) => send(c.ws, { id, event: { ...e } }));
    c.streams.set(id, {
      close: () => {
        off();
        c.streams.delete(id);
      },
    });
    return { streaming: true };
  },
  "stream.cancel": (_lx, a, c) => {
    const sid = optInt(a, "stream");
    if (sid === undefined) throw new ArgError("argument 'stream' must be an integer");
    const s = c.streams.get(sid);
    if (s === undefined) throw new LibxlError("ENOENT", `no stream ${sid}`);
    s.close();
    send(c.ws, { id: sid, end: "cancelled" });
  },
  "domain.save": (lx, a) => {
    const file = str(a, "file");
    if (!isAbsolute(file)) throw new ArgError("argument 'file' must be an absolute path (on the host)");
    return lx.save(dom(a), file, a.keepRunning === true);
  },
  "domain.restore": (lx, a) => {
    const file = str(a, "file");
    if (!isAbsolute(file)) throw new ArgError("argument 'file' must be an absolute path (on the host)");
    const name = optStr(a, "name");
    return lx.restore(file, { paused: a.paused === true, ...(name !== undefined ? { name } : {}) });
  },
  "host.info": (lx) => lx.info(),
  "host.dmesg": (lx, a) => lx.dmesg(a.clear === true),
  "vcpu.list": (lx, a) => lx.vcpuList(a.doms === undefined ? undefined : strList(a, "doms")),
  "vcpu.pin": (lx, a) => {
    const v = vcpuArg(a, "vcpu");
    if (v === undefined) throw new ArgError("argument 'vcpu' is required");
    lx.vcpuPin(dom(a), v, optStr(a, "hard") ?? null, optStr(a, "soft") ?? null);
  },
  "cpupool.list": (lx) => lx.cpupoolList(),
  "cpupool.create": async (lx, a) => ({
    poolId: await lx.cpupoolCreate(str(a, "name"), optStr(a, "sched") ?? "credit2", strList(a, "cpus")),
  }),
  "cpupool.destroy": (lx, a) => lx.cpupoolDestroy(str(a, "pool")),
  "cpupool.cpu_add": (lx, a) => lx.cpupoolCpuAdd(str(a, "pool"), str(a, "cpus")),
  "cpupool.cpu_remove": (lx, a) => lx.cpupoolCpuRemove(str(a, "pool"), str(a, "cpus")),
  "cpupool.migrate": (lx, a) => lx.cpupoolMigrate(dom(a), str(a, "pool")),
  "sched.credit2.get": (lx, a) => lx.schedCredit2(a.dom === undefined ? undefined : dom(a)),
  "sched.credit2.set": (lx, a) => lx.schedCredit2Set(dom(a), optInt(a, "weight"), optInt(a, "cap")),
  "sched.rtds.get": (lx, a) => lx.schedRtds(a.dom === undefined ? undefined : dom(a)),
  "sched.rtds.set": (lx, a) => {
    const e = a.extratime;
    if (e !== undefined && typeof e !== "boolean") throw new ArgError("argument 'extratime' must be a boolean");
    const period = optInt(a, "period");
    const budget = optInt(a, "budget");
    lx.schedRtdsSet(dom(a), vcpuArg(a, "vcpu"), {
      ...(period !== undefined ? { periodUs: period } : {}),
      ...(budget !== undefined ? { budgetUs: budget } : {}),
      ...(e !== undefined ? { extratime: e } : {}),
    });
  },
};

export const MGMT_OPS: readonly string[] = Object.keys(OPS);

/**
 * An op the host adds (the pool's): its args, and a way to send `event` messages under the
 * request's id before its reply (progress).
 */
export type ExtraOp = (a: Args, event: (e: Readonly<Record<string, unknown>>) => void) => unknown;

export interface MgmtServerOptions {
  host?: string;
  port?: number;
  /** More ops, served like the built-in ones. */
  extraOps?: Readonly<Record<string, ExtraOp>>;
  /** Connections to other paths than "/" (the pool link): path -> handler. */
  paths?: Readonly<Record<string, (ws: WebSocket, remote: string) => void>>;
  /**
   * What a management connection must show (`/?token=…`); default a new random one. The
   * endpoint can destroy domains and write files on the host, and a pool host listens beyond
   * loopback: nobody gets it without the token, which only the host's owner sees (clientUrl).
   */
  token?: string;
}

function send(ws: WebSocket, msg: Reply): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(encodeFrame(msg));
}

function errorBody(e: unknown): { code: string; message: string } {
  if (e instanceof LibxlError) return { code: e.code, message: e.message };
  if (e instanceof ProtocolError) return { code: "EPROTO", message: e.message };
  return { code: "EIO", message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

/**
 * The address to give out for a listener on `host`: itself, or for a wildcard (0.0.0.0, ::) the
 * first non-internal address of that family among `ifaces` (os.networkInterfaces()), else
 * loopback.
 */
export function advertisedAddress(
  host: string,
  ifaces: Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>,
): string {
  const v6 = host === "::" || host === "[::]";
  if (host !== "0.0.0.0" && !v6) return host;
  for (const list of Object.values(ifaces))
    for (const i of list ?? [])
      if (!i.internal && i.family === (v6 ? "IPv6" : "IPv4") && !/^fe80:/i.test(i.address)) return i.address;
  return v6 ? "::1" : "127.0.0.1";
}

export class MgmtServer {
  private constructor(
    private readonly wss: WebSocketServer,
    /** Where it listens (ws://host:port); pool links use it (they authenticate themselves). */
    readonly url: string,
    private readonly conns: Set<Conn>,
    private readonly token: string,
  ) {}

  /** What xl needs: the URL with the token (XENON_HOST). */
  get clientUrl(): string {
    return `${this.url}/?token=${this.token}`;
  }

  /** Listens on host:port (port 0 = any free one) and serves `lx`. */
  static async start(lx: Libxl, opts: MgmtServerOptions = {}): Promise<MgmtServer> {
    const host = opts.host ?? "127.0.0.1";
    // Pool links carry migration data in bigger messages; the management ops check their own limit.
    const wss = new WebSocketServer({ host, port: opts.port ?? 0, maxPayload: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    const port = (wss.address() as AddressInfo).port;
    const conns = new Set<Conn>();
    const token = opts.token ?? randomBytes(24).toString("base64url");
    const expected = createHash("sha256").update(token).digest();
    // A wildcard listener is reached at one of the machine's addresses, not at 0.0.0.0 / ::
    // (pool members are told this URL and would dial themselves).
    const shown = advertisedAddress(host, networkInterfaces());
    const server = new MgmtServer(wss, `ws://${shown.includes(":") ? `[${shown}]` : shown}:${port}`, conns, token);
    server.extraOps = opts.extraOps ?? {};
    wss.on("connection", (ws, req) => {
      const u = new URL(req.url ?? "/", "ws://host");
      const path = u.pathname;
      if (path !== "/") {
        const h = opts.paths !== undefined && Object.hasOwn(opts.paths, path) ? opts.paths[path] : undefined;
        if (h === undefined) {
          ws.close(4004, `nothing is served at ${path}`);
          return;
        }
        h(ws, `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`);
        return;
      }
      // Compared as digests, in constant time: the check leaks neither length nor prefix.
      const shown = createHash("sha256")
        .update(u.searchParams.get("token") ?? "")
        .digest();
      if (!timingSafeEqual(shown, expected)) {
        ws.close(MGMT_CLOSE_NO_TOKEN, "no or wrong token: use the XENON_HOST URL the host printed");
        return;
      }
      const c: Conn = { ws, streams: new Map() };
      conns.add(c);
      ws.on("message", (data, isBinary) => {
        if (!isBinary) {
          send(ws, {
            id: null,
            ok: false,
            error: { code: "EPROTO", message: "text frames are not part of the protocol" },
          });
          return;
        }
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        let req: Request;
        try {
          req = decodeRequest(bytes);
        } catch (e) {
          const id = e instanceof ProtocolError ? e.id : null;
          send(ws, { id, ok: false, error: errorBody(e) });
          return;
        }
        void server.handle(lx, c, req);
      });
      ws.on("close", () => {
        for (const s of [...c.streams.values()]) s.close();
        conns.delete(c);
      });
      ws.on("error", () => ws.terminate());
    });
    return server;
  }

  private extraOps: Readonly<Record<string, ExtraOp>> = {};

  private async handle(lx: Libxl, c: Conn, req: Request): Promise<void> {
    const extra = Object.hasOwn(this.extraOps, req.op) ? this.extraOps[req.op] : undefined;
    const h: Handler | undefined =
      extra !== undefined
        ? (_lx, a, conn, id) => extra(a, (event) => send(conn.ws, { id, event }))
        : Object.hasOwn(OPS, req.op)
          ? OPS[req.op]
          : undefined;
    if (h === undefined) {
      send(c.ws, { id: req.id, ok: false, error: { code: "ENOSYS", message: `unknown op '${req.op}'` } });
      return;
    }
    if (c.streams.has(req.id)) {
      send(c.ws, { id: req.id, ok: false, error: { code: "EEXIST", message: `stream ${req.id} is open` } });
      return;
    }
    try {
      const result = await h(lx, req.args, c, req.id);
      send(c.ws, { id: req.id, ok: true, result: result ?? null });
    } catch (e) {
      send(c.ws, { id: req.id, ok: false, error: errorBody(e) });
    }
  }

  /** Ends every stream, closes every connection and the listener. */
  async close(): Promise<void> {
    for (const c of this.conns) {
      for (const [id, s] of [...c.streams]) {
        send(c.ws, { id, end: "host shutting down" });
        s.close();
      }
      c.ws.close(1001, "host shutting down");
    }
    await new Promise<void>((resolve) => {
      this.wss.close(() => resolve());
      for (const c of this.conns) c.ws.terminate();
    });
  }
}
