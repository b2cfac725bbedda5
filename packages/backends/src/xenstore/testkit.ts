/**
 * Test helpers (not exported from the package): a client over the in-process connection that
 * speaks in message names and strings.
 */
import { InProcessConnection, type XsReply } from "./domain_conn.js";
import { nulStrings, splitPayload, textBytes, XS_TYPES, type XsTypeName } from "./wire.js";
import type { Xenstored } from "./xenstored.js";

export function payloadFor(type: XsTypeName, args: readonly string[]): Uint8Array {
  // WRITE's value is not NUL-terminated; everything else is a list of NUL-terminated strings.
  if (type === "WRITE") return textBytes(`${args[0]}\0${args[1] ?? ""}`);
  return nulStrings(...args);
}

export class TestClient {
  readonly conn: InProcessConnection;

  /** A privileged client (like a socket), or domain `domid`'s own unprivileged connection (like a ring). */
  constructor(daemon: Xenstored, domid: number, privileged = domid === 0) {
    this.conn = privileged
      ? new InProcessConnection(daemon, { domid, privileged })
      : new InProcessConnection({ connect: (t) => daemon.connectDomain(domid, t) }, { domid, privileged });
  }

  raw(type: XsTypeName, args: readonly string[], txId = 0): XsReply {
    return this.conn.request(XS_TYPES[type], payloadFor(type, args), txId);
  }

  /** Sends and expects success; READ's raw value comes back as one string. */
  ok(type: XsTypeName, args: readonly string[], txId = 0): string[] {
    const r = this.raw(type, args, txId);
    if (r.error) throw new Error(`${type} ${args.join(" ")}: ${r.error}`);
    if (type === "READ") return [Buffer.from(r.payload).toString("latin1")];
    return splitPayload(r.payload).strings;
  }

  /** Sends and expects an error; returns its name. */
  err(type: XsTypeName, args: readonly string[], txId = 0): string {
    const r = this.raw(type, args, txId);
    if (!r.error) throw new Error(`${type} ${args.join(" ")}: expected an error, got success`);
    return r.error;
  }

  read(path: string, txId = 0): string {
    return this.ok("READ", [path], txId)[0]!;
  }

  write(path: string, value: string, txId = 0): void {
    this.ok("WRITE", [path, value], txId);
  }

  perms(path: string): string[] {
    return this.ok("GET_PERMS", [path]);
  }

  start(): number {
    return Number(this.ok("TRANSACTION_START", [""])[0]);
  }

  events(): [string, string][] {
    return this.conn.takeEvents();
  }
}
