/**
 * Entry of the XenStore domain's worker thread (started by launch.ts). Everything the domain
 * knows comes through two MessagePorts: its hypercall port (to the core) and a control port to
 * the toolstack, which carries the toolstack's privileged XenStore connection (as libxl's socket
 * connection to xenstored) plus start/stop. Optionally it also serves the Unix socket.
 */
import type { MessagePort } from "node:worker_threads";
import { workerData } from "node:worker_threads";
import { HypercallClient } from "@xenon/hypervisor";
import type { XsPort, XsTransport } from "./domain_conn.js";
import type { XenstoreDomainWorkerData, XsControlDown, XsControlUp } from "./launch.js";
import { MessagePortTransport } from "./port_link.js";
import { startXenstoredServer, type XenstoredServer } from "./server.js";
import { XenstoreDomain } from "./xenstore_domain.js";

/** The toolstack's connection: whole messages over the control port, privileged dom0. */
class ControlTransport implements XsTransport {
  port: XsPort | null = null;
  constructor(private readonly control: MessagePort) {}
  deliver(message: Uint8Array): boolean {
    this.control.postMessage({ xs: message } satisfies XsControlUp);
    return true;
  }
  close(reason: string): void {
    this.control.postMessage({ log: `xenstored: toolstack connection dropped: ${reason}` } satisfies XsControlUp);
  }
}

async function main(data: XenstoreDomainWorkerData): Promise<void> {
  const control = data.control;
  const up = (m: XsControlUp) => control.postMessage(m);
  const client = await HypercallClient.connect(data.hypercall);
  const dom = new XenstoreDomain(client, { log: (line) => up({ log: line }) });
  let server: XenstoredServer | null = null;
  try {
    if (data.socketPath !== undefined) server = await startXenstoredServer(data.socketPath, { daemon: dom.daemon });
  } catch (e) {
    up({ failed: (e as Error).message });
    client.close();
    control.close();
    return;
  }
  const virqPort = await dom.start();
  const transport = new ControlTransport(control);
  const port = dom.daemon.connect(transport, { domid: 0, privileged: true });
  transport.port = port;
  const loop = client.eventLoop();
  /** Ports served as domains' connections (closed when the daemon stops). */
  const served = new Set<MessagePort>();
  control.on("message", (m: XsControlDown) => {
    if ("xs" in m) port.receive(m.xs);
    else if ("connect" in m) {
      const { domid, privileged, port: mp } = m.connect;
      served.add(mp);
      mp.once("close", () => served.delete(mp));
      new MessagePortTransport((t) => dom.daemon.connectDomain(domid, t, privileged), mp);
    } else if ("settle" in m) void dom.settled().then(() => up({ settled: m.settle }));
    else if ("stop" in m) {
      dom.stop();
      void (async () => {
        port.closed();
        for (const mp of served) mp.close();
        await server?.close();
        client.close();
        await loop;
        up({ stopped: true });
        control.close();
      })();
    }
  });
  up({ ready: { domid: client.domid, virqPort } });
}

void main(workerData as XenstoreDomainWorkerData);
