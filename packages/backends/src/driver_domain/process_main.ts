/**
 * Process-mode entry of a driver domain's kernel (kernel.ts): a child process whose only link to
 * the host is the framed stream on stdin/stdout (the hypervisor's hypercall/port/stream.ts, PROTOCOL.md). No shared memory: the
 * hypercall client gets no shared_info and no grant views, so the kernel reaches guests by grant
 * copy and serves ioreqs by hypercall. stdout belongs to the stream; console output goes to stderr.
 */
import { EventEmitter } from "node:events";
import {
  decodeStreamValue,
  encodeStreamFrame,
  encodeStreamValue,
  HypercallClient,
  STREAM_CHANNEL_CONTROL,
  STREAM_CHANNEL_HYPERCALL,
  StreamParser,
} from "@xenon/hypervisor";
import type { NetLink } from "../virtio/net/link.js";
import { XsClient, type XsClientLink } from "../xenstore/client.js";
import { runKernel } from "./kernel.js";
import type { DriverDomainBoot, DriverDomainDown } from "./protocol.js";

for (const k of ["log", "info", "debug", "warn"] as const)
  console[k] = (...a: unknown[]) => process.stderr.write(`${a.map(String).join(" ")}\n`);

const send = (channel: number, bytes: Uint8Array) => process.stdout.write(encodeStreamFrame(channel, bytes));

/** The hypercall port's end over the stream (what HypercallClient needs of a MessagePort). */
class StreamEndpoint extends EventEmitter {
  postMessage(bytes: unknown): void {
    send(STREAM_CHANNEL_HYPERCALL, bytes as Uint8Array);
  }
  close(): void {}
}

const endpoint = new StreamEndpoint();
const connected = HypercallClient.connect(endpoint);
let onControl: ((m: DriverDomainDown) => void) | null = null;

/** A net device's link: frames cross the stream as `{ vif: { slot, bytes } }` control messages. */
class StreamNetLink implements NetLink {
  private receiver: ((frame: Uint8Array) => void) | null = null;
  constructor(private readonly slot: number) {}
  transmit(frame: Uint8Array): void {
    process.stdout.write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { vif: { slot: this.slot, bytes: frame } }));
  }
  onReceive(fn: (frame: Uint8Array) => void): void {
    this.receiver = fn;
  }
  receive(frame: Uint8Array): void {
    this.receiver?.(frame);
  }
}
const netLinks = new Map<number, StreamNetLink>();

/**
 * Its XenStore connection: bytes cross the stream as `{ xs: bytes }` control messages; the host
 * holds the port the XenStore domain bound to this domid and relays, so the identity stays there.
 */
let xsReceive: (bytes: Uint8Array) => void = () => {};
let xsClosed: (reason: string) => void = () => {};
const xsLink: XsClientLink = {
  send: (bytes) => process.stdout.write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { xs: bytes })),
  onReceive: (fn) => {
    xsReceive = fn;
  },
  onClose: (fn) => {
    xsClosed = fn;
  },
  close: () => {},
};
let gotBoot: (b: DriverDomainBoot) => void = () => {};
const booted = new Promise<DriverDomainBoot>((resolve) => {
  gotBoot = resolve;
});

const parser = new StreamParser();
process.stdin.on("data", (chunk: Buffer) => {
  try {
    for (const f of parser.feed(chunk)) {
      if (f.channel === STREAM_CHANNEL_HYPERCALL) endpoint.emit("message", f.payload);
      else {
        const m = decodeStreamValue(f) as {
          boot?: DriverDomainBoot;
          vif?: { slot: number; bytes: Uint8Array };
          xs?: Uint8Array;
          xsClosed?: true;
        } & DriverDomainDown;
        if (m !== null && typeof m === "object" && m.boot !== undefined) gotBoot(m.boot);
        else if (m !== null && typeof m === "object" && m.xs !== undefined) {
          const b = m.xs;
          if (!(b instanceof Uint8Array)) throw new Error("an xs frame that is not bytes");
          xsReceive(new Uint8Array(b.buffer, b.byteOffset, b.length));
        } else if (m !== null && typeof m === "object" && m.xsClosed === true)
          xsClosed("the XenStore domain closed the connection");
        else if (m !== null && typeof m === "object" && m.vif !== undefined) {
          const b = m.vif.bytes;
          if (b instanceof Uint8Array)
            netLinks.get(m.vif.slot)?.receive(new Uint8Array(b.buffer, b.byteOffset, b.length));
        } else onControl?.(m);
      }
    }
  } catch (e) {
    process.stderr.write(`driver domain: broken stream from the host: ${(e as Error).message}\n`);
    process.exit(70);
  }
});
// The host is gone: so is this domain.
process.stdin.on("end", () => process.exit(0));

async function main(): Promise<void> {
  const [client, boot] = await Promise.all([connected, booted]);
  for (const [i, d] of boot.devices.entries()) if (d.device.kind === "net") netLinks.set(i, new StreamNetLink(i));
  await runKernel(
    client,
    boot,
    {
      send: (m) => process.stdout.write(encodeStreamValue(STREAM_CHANNEL_CONTROL, m)),
      onMessage: (fn) => {
        onControl = fn;
      },
      close: () => setImmediate(() => process.exit(0)),
    },
    "process",
    (code) => process.exit(code),
    netLinks,
    boot.xenstore === true ? new XsClient(xsLink) : undefined,
  );
}

main().catch((e: unknown) =>
  process.stdout.write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { failed: (e as Error).message ?? String(e) })),
);
