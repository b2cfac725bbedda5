/**
 * XenStore over a MessagePort: how a TypeScript domain without a ring (a driver domain) gets its
 * own connection. The toolstack asks the XenStore domain for one (`XenstoreDomainHandle.connectDomain`),
 * which binds the port to a domid the way XS_INTRODUCE binds a ring: the identity is the
 * toolstack's word, never something the domain claims, so permissions hold for whatever it sends.
 * Each message is a Uint8Array chunk of the byte stream (any chunking); anything else is a protocol
 * error that drops the connection.
 */
import type { MessagePort } from "node:worker_threads";
import type { XsClientLink } from "./client.js";
import type { XsPort, XsTransport } from "./domain_conn.js";

/** The daemon's end: `connect` registers it (e.g. `daemon.connectDomain(domid, t, privileged)`). */
export class MessagePortTransport implements XsTransport {
  readonly port: XsPort;
  private isClosed = false;

  constructor(
    connect: (transport: XsTransport) => XsPort,
    private readonly mp: MessagePort,
  ) {
    this.port = connect(this);
    mp.on("message", (m: unknown) => {
      if (this.isClosed) return;
      if (m instanceof Uint8Array) this.port.receive(m);
      else {
        // Not bytes: the peer does not speak the protocol; the daemon forgets the connection.
        this.close("a message that is not bytes");
        this.port.closed();
      }
    });
    // The peer's end closed (its worker ended, its relay closed it).
    mp.on("close", () => {
      this.isClosed = true;
      this.port.closed();
    });
  }

  deliver(message: Uint8Array): boolean {
    if (!this.isClosed) this.mp.postMessage(message);
    return true;
  }

  close(_reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.mp.close();
  }
}

/** The client's end over a MessagePort. */
export function messagePortLink(mp: MessagePort): XsClientLink {
  let closing = false;
  return {
    send: (bytes) => mp.postMessage(bytes),
    onReceive: (fn) =>
      mp.on("message", (m: unknown) => {
        if (m instanceof Uint8Array) fn(m);
      }),
    onClose: (fn) =>
      mp.on("close", () => {
        if (!closing) fn("the XenStore domain closed the connection");
      }),
    close: () => {
      closing = true;
      mp.close();
    },
  };
}
