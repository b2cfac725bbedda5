/**
 * Thread-mode entry of a driver domain's kernel (kernel.ts): a worker thread whose hypercall
 * port and control channel are MessagePorts from the launcher.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import { HypercallClient } from "@xenon/hypervisor";
import { MessagePortNetLink } from "../vswitch/message_port.js";
import { XsClient } from "../xenstore/client.js";
import { messagePortLink } from "../xenstore/port_link.js";
import { runKernel } from "./kernel.js";
import type { DriverDomainBoot, DriverDomainDown, DriverDomainUp } from "./protocol.js";

export interface DriverDomainWorkerData {
  readonly hypercall: MessagePort;
  readonly control: MessagePort;
  readonly boot: DriverDomainBoot;
  /** Net devices' switch ports (vswitch/protocol.ts), by slot index. */
  readonly vifs?: ReadonlyArray<readonly [number, MessagePort]>;
  /** Its XenStore connection (bound to its domid by the XenStore domain). */
  readonly xs?: MessagePort;
}

const wd = workerData as DriverDomainWorkerData;
const up = (m: DriverDomainUp) => wd.control.postMessage(m);

async function main(): Promise<void> {
  const client = await HypercallClient.connect(wd.hypercall);
  await runKernel(
    client,
    wd.boot,
    {
      send: up,
      onMessage: (fn) => wd.control.on("message", (m: DriverDomainDown) => fn(m)),
      close: () => wd.control.close(),
    },
    "thread",
    (code) => process.exit(code),
    new Map((wd.vifs ?? []).map(([slot, port]) => [slot, new MessagePortNetLink(port)])),
    wd.xs !== undefined ? new XsClient(messagePortLink(wd.xs)) : undefined,
  );
}

main().catch((e: unknown) => up({ failed: (e as Error).message ?? String(e) }));
