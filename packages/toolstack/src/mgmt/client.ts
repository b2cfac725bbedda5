/**
 * A client of the management endpoint (what `xl` uses): requests with ids, replies matched to
 * them, streams (console, events) delivered to callbacks until their end message.
 */
import WebSocket from "ws";
import { decodeReply, encodeFrame, MGMT_CLOSE_NO_TOKEN, type ProtocolError } from "./protocol.js";

export class MgmtError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "MgmtError";
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface StreamHandlers {
  data?(bytes: Uint8Array): void;
  event?(e: Readonly<Record<string, unknown>>): void;
  end(reason: string): void;
}

export class MgmtClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, StreamHandlers>();
  private closedWith: Error | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      if (!isBinary) return;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      let r: ReturnType<typeof decodeReply>;
      try {
        r = decodeReply(bytes);
      } catch (e) {
        this.fail(new MgmtError("EPROTO", `bad reply from host: ${(e as ProtocolError).message}`));
        return;
      }
      if ("ok" in r) {
        if (r.id === null) {
          if (!r.ok) this.fail(new MgmtError(r.error.code, r.error.message));
          return;
        }
        const p = this.pending.get(r.id);
        if (p === undefined) return;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(r.result);
        else {
          this.streams.delete(r.id);
          p.reject(new MgmtError(r.error.code, r.error.message));
        }
      } else if ("data" in r) this.streams.get(r.id)?.data?.(r.data);
      else if ("event" in r) this.streams.get(r.id)?.event?.(r.event);
      else if ("end" in r) {
        const s = this.streams.get(r.id);
        this.streams.delete(r.id);
        s?.end(r.end);
      }
    });
    ws.on("close", (code, reason) =>
      this.fail(
        code === MGMT_CLOSE_NO_TOKEN
          ? new MgmtError("EACCES", `the host refused the connection: ${reason.toString()}`)
          : new MgmtError("ECONNRESET", "connection to the host closed"),
      ),
    );
    ws.on("error", (e) => this.fail(new MgmtError("ECONNREFUSED", e.message)));
  }

  static connect(url: string, timeoutMs = 5000): Promise<MgmtClient> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: 1 << 20 });
      } catch (e) {
        reject(new MgmtError("EINVAL", `bad host URL '${url}': ${(e as Error).message}`));
        return;
      }
      ws.once("open", () => resolve(new MgmtClient(ws)));
      ws.once("error", (e) => reject(new MgmtError("ECONNREFUSED", `cannot reach the host at ${url}: ${e.message}`)));
    });
  }

  private fail(e: Error): void {
    if (this.closedWith !== null) return;
    this.closedWith = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const s of this.streams.values()) s.end(e.message);
    this.streams.clear();
  }

  private sendRequest(op: string, args: Record<string, unknown>): { id: number; reply: Promise<unknown> } {
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      if (this.closedWith !== null) {
        reject(this.closedWith);
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.ws.send(encodeFrame({ id, op, args }));
    });
    return { id, reply };
  }

  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    return this.sendRequest(op, args).reply as Promise<T>;
  }

  /** A request whose `event` messages (progress) go to `onEvent` until its reply. */
  async requestWithEvents<T = unknown>(
    op: string,
    args: Record<string, unknown>,
    onEvent: (e: Readonly<Record<string, unknown>>) => void,
  ): Promise<T> {
    const id = this.nextId;
    this.streams.set(id, { event: onEvent, end: () => {} });
    try {
      return (await this.sendRequest(op, args).reply) as T;
    } finally {
      this.streams.delete(id);
    }
  }

  /** Opens a stream: its id (for stream.cancel) once the host accepted it, and its end reason. */
  async openStream(
    op: string,
    args: Record<string, unknown>,
    h: Omit<StreamHandlers, "end">,
  ): Promise<{ id: number; ended: Promise<string> }> {
    let endResolve: (r: string) => void = () => {};
    const ended = new Promise<string>((r) => {
      endResolve = r;
    });
    const id = this.nextId;
    this.streams.set(id, { ...h, end: endResolve });
    await this.sendRequest(op, args).reply;
    return { id, ended };
  }

  /** Opens a stream and resolves with its end reason once the host ends it. */
  async stream(op: string, args: Record<string, unknown>, h: Omit<StreamHandlers, "end">): Promise<string> {
    return (await this.openStream(op, args, h)).ended;
  }

  close(): void {
    this.closedWith ??= new MgmtError("ECONNRESET", "closed");
    this.ws.close();
  }
}
