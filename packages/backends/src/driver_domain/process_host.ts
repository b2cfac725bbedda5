/**
 * Process mode, the host's end: the driver domain's kernel runs in a child process (node on
 * process_main.js) that shares no memory with the host. Its hypercall port and control channel
 * are the two channels of one framed stream (the hypervisor's hypercall/port/stream.ts) over the child's stdin/stdout; the core
 * serves the port without shared views (PortServer in stream mode: no shared_info, no grant
 * views, ioreqs fetched and answered by hypercall), so guest data moves only by grant copy.
 * The child's heap is capped with --max-old-space-size; stderr is kept for the failure reason.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  decodeStreamValue,
  encodeStreamValue,
  PortServer,
  STREAM_CHANNEL_CONTROL,
  STREAM_CHANNEL_HYPERCALL,
  StreamParser,
  watchUpcalls,
} from "@xenon/hypervisor";
import { frameOf, messageOf } from "../vswitch/protocol.js";
import type { KernelEvents, KernelRun, KernelStart } from "./launch.js";
import type { DriverDomainUp } from "./protocol.js";

const UP_KEYS = new Set(["ready", "failed", "log", "stopped", "pong", "console", "reply"]);

export function startProcessKernel(s: KernelStart, ev: KernelEvents): KernelRun {
  const entry = fileURLToPath(new URL("./process_main.js", import.meta.url));
  const child = spawn(process.execPath, [`--max-old-space-size=${s.memoryLimitMiB}`, entry], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let dead = false;
  let stderr = "";
  const die = (why: string) => {
    if (dead) return;
    dead = true;
    unwatch();
    child.kill("SIGKILL");
    ev.died(why);
  };
  const write = (bytes: Uint8Array) => {
    if (!dead && child.stdin.writable) child.stdin.write(bytes);
  };
  child.stdin.on("error", () => {}); // EPIPE after the child died: its exit reports it
  // Boot first, so the kernel knows its devices before the port's hello arrives.
  write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { boot: s.boot }));
  const server = new PortServer(
    s.hv,
    s.domid,
    { send: (msg) => write(encodeStreamValue(STREAM_CHANNEL_HYPERCALL, msg)) },
    false,
  );
  const unwatch = watchUpcalls(s.hv, s.domid, () => {
    if (!dead) server.notifyUpcall();
  });
  // The vifs: the child has no MessagePort, so each frame crosses the stream as a control
  // message `{ vif: { slot, bytes } }`, both ways; the switch's ports stay on this side.
  const vifs = new Map(s.vifs.map(([slot, port]) => [slot, port] as const));
  for (const [slot, port] of vifs) {
    port.on("message", (m: unknown) => {
      const bytes = frameOf(m);
      if (bytes !== null) write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { vif: { slot, bytes } }));
    });
    port.unref();
  }
  // XenStore: the port stays here, bound to this domid by the XenStore domain; the child's bytes
  // are relayed both ways as `{ xs: bytes }`, so whatever it sends is checked as this domid's.
  const xs = s.xs;
  if (xs !== undefined) {
    xs.on("message", (m: unknown) => {
      if (m instanceof Uint8Array) write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { xs: m }));
    });
    xs.unref();
    // The XenStore domain dropped it (released the domain, stopped): the child's client hears so.
    xs.on("close", () => write(encodeStreamValue(STREAM_CHANNEL_CONTROL, { xsClosed: true })));
  }
  const fromChild = (m: { vif?: unknown; xs?: unknown }): boolean => {
    if (m.xs !== undefined) {
      if (xs === undefined || !(m.xs instanceof Uint8Array))
        throw new Error("an xs frame without a XenStore connection");
      xs.postMessage(m.xs);
      return true;
    }
    const v = m.vif as { slot?: unknown; bytes?: unknown } | undefined;
    if (v === undefined) return false;
    const port = typeof v.slot === "number" ? vifs.get(v.slot) : undefined;
    if (port === undefined || !(v.bytes instanceof Uint8Array)) throw new Error("a vif frame for no vif");
    const frame = messageOf(v.bytes);
    port.postMessage(frame, [frame]);
    return true;
  };
  const parser = new StreamParser();
  child.stdout.on("data", (chunk: Buffer) => {
    if (dead) return;
    try {
      for (const f of parser.feed(chunk)) {
        if (f.channel === STREAM_CHANNEL_HYPERCALL) {
          let req: unknown;
          try {
            req = decodeStreamValue(f);
          } catch {
            continue; // undecodable request: nothing to answer (no id), as over a MessagePort
          }
          server.handle(req);
        } else {
          const m = decodeStreamValue(f);
          if (m !== null && typeof m === "object" && fromChild(m as { vif?: unknown; xs?: unknown })) continue;
          if (m === null || typeof m !== "object" || !Object.keys(m).some((k) => UP_KEYS.has(k)))
            throw new Error("control message of unknown kind");
          ev.up(m as DriverDomainUp);
        }
      }
    } catch (e) {
      die(`broken stream: ${(e as Error).message}`);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
    // XENON_DD_STDERR=1 passes the child's stderr through (debugging).
    if (process.env.XENON_DD_STDERR) process.stderr.write(chunk);
  });
  const closed = new Promise<void>((resolve) => {
    child.on("close", (code, signal) => {
      const oom = /heap out of memory|Allocation failed/.test(stderr);
      const first = stderr.split("\n").find((l) => /Error|error:/.test(l));
      die(
        oom
          ? "out of memory"
          : `exited (${signal ?? code})${first !== undefined ? `: ${first.trim().slice(0, 200)}` : ""}`,
      );
      resolve();
    });
  });
  return {
    send: (m) => write(encodeStreamValue(STREAM_CHANNEL_CONTROL, m)),
    kill: async () => {
      dead = true;
      unwatch();
      for (const port of vifs.values()) port.close();
      xs?.close();
      child.kill("SIGKILL");
      await closed;
    },
  };
}
