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
        const m = decodeStreamValue(f) as { boot?: DriverDomainBoot } & DriverDomainDown;
        if (m !== null && typeof m === "object" && m.boot !== undefined) gotBoot(m.boot);
        else onControl?.(m);
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
  );
}

main().catch((e: unknown) =>
  process.stdout.write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { failed: (e as Error).message ?? String(e) })),
);
