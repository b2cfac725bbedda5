/**
 * A driver domain's kernel: a TypeScript domain with its hypercall port, one event loop and its
 * grant mapper, serving a list of virtio-mmio devices (for one guest or several) through one
 * IOREQ server per guest. The same kernel runs in a worker thread (main.ts, thread mode: ioreq
 * pages and granted frames are shared views) and in a child process (process_main.ts, process
 * mode: no shared memory; ioreqs travel over the port and guest data by grant copy).
 *
 * Guest memory is reached only through the guests' grants: with no foreign-mapping privilege, an
 * ungranted page is out of reach. A device without grants (slot.grants false) needs foreign
 * mapping (or, in process mode, foreign copy), which only a privileged driver domain has.
 *
 * With a XenStore connection (bound to this domid by the toolstack) the kernel acts as Xen's
 * virtio backends do (xenbus.ts): before serving it reads each device's backend nodes and refuses
 * to start when they disagree with its boot record; once its IOREQ servers are up it writes
 * `state` 4 (Connected), and 6 (Closed) when it stops serving a device (detach, stop).
 */
import type { HypercallClient } from "@xenon/hypervisor";
import type { DeviceBus } from "../virtio/bus.js";
import { ConsoleDevice } from "../virtio/console/device.js";
import { Mmio } from "../virtio/constants.js";
import { ForeignCopyMemory } from "../virtio/foreign_copy_memory.js";
import { ForeignMapMemory } from "../virtio/foreign_map_memory.js";
import { GrantCopyMemory } from "../virtio/grant_copy_memory.js";
import { GrantMapMemory } from "../virtio/grant_map_memory.js";
import { VirtioMmioTransport } from "../virtio/mmio_transport.js";
import type { NetLink } from "../virtio/net/link.js";
import type { XsClient } from "../xenstore/client.js";
import { makeDevice } from "./devices.js";
import { IoreqClient, type IoreqRange } from "./ioreq_client.js";
import type { DeviceSlot, DriverDomainBoot, DriverDomainDown, DriverDomainUp, FaultKind } from "./protocol.js";
import { checkVirtioBackend, setVirtioBackendState, XenbusState, type XenbusStateValue } from "./xenbus.js";

export type DriverDomainMode = "thread" | "process";

/** The kernel's end of the control channel to its launcher. */
export interface ControlChannel {
  send(m: DriverDomainUp): void;
  onMessage(fn: (m: DriverDomainDown) => void): void;
  close(): void;
}

interface Served {
  /** Its place in boot.devices (console messages and input name it). */
  readonly index: number;
  readonly slot: DeviceSlot;
  readonly transport: VirtioMmioTransport;
  readonly irqPort: number;
}

/** Boots the devices, reports ready, serves until { stop }. Rejects if a device cannot start. */
export async function runKernel(
  client: HypercallClient,
  boot: DriverDomainBoot,
  ctl: ControlChannel,
  mode: DriverDomainMode,
  /** Ends the domain at once (a test's `exit` fault). */
  exit: (code: number) => never,
  /** Switch ports of the net devices, by slot index (the host side plugged them in). */
  netLinks: ReadonlyMap<number, NetLink> = new Map(),
  /** Its XenStore connection, when the host runs XenStore (boot.xenstore). */
  xs?: XsClient,
): Promise<void> {
  const log = (line: string) => ctl.send({ log: line });
  /** Writes the XenBus state of devices; a failure is logged (the devices serve on regardless). */
  const setState = async (of: readonly Served[], state: XenbusStateValue) => {
    if (xs === undefined) return;
    for (const s of of)
      await setVirtioBackendState(xs, client.domid, s.slot, state).catch((e: unknown) =>
        log(`xenstore: d${s.slot.guest} virtio device ${s.slot.devid}: state ${state}: ${(e as Error).message}`),
      );
  };
  const served: Served[] = [];
  const servers: IoreqClient[] = [];
  /** Interrupts on their way to the core (a snapshot waits for them: they belong to the state). */
  const sends = new Set<Promise<unknown>>();
  const loop = client.eventLoop().catch(() => {});
  /**
   * Ends what this kernel started: its IOREQ servers, its devices, then (for devices that were
   * connected) their XenBus state Closed, then its connections.
   */
  const shutDown = async (connected: boolean) => {
    for (const s of servers) await s.destroy().catch(() => {});
    for (const s of served) s.transport.device.close?.();
    if (connected) await setState(served, XenbusState.Closed);
    xs?.close();
    client.close();
    await loop;
  };
  try {
    if (xs !== undefined)
      // The toolstack's word on each device, through this domain's own connection; a mismatch
      // is a toolstack bug or a stale node, and serving anyway would serve the wrong guest.
      for (const slot of boot.devices) if (!slot.detached) await checkVirtioBackend(xs, client.domid, slot);
    for (const [i, slot] of boot.devices.entries()) {
      if (slot.detached) continue;
      // A restarted domain finds the guest's end unbound (its old peer is gone) and binds to it.
      const irqPort = boot.restarted ? await client.evtchnBindInterdomain(slot.guest, slot.guestIrqPort) : slot.irqPort;
      if (irqPort < 0)
        throw new Error(`interrupt channel d${slot.guest}:${slot.guestIrqPort}: bind failed (${irqPort})`);
      const grants = slot.grants !== false;
      // Map where memory is shared (thread mode), copy where it is not (process mode).
      const memory = !grants
        ? mode === "thread"
          ? new ForeignMapMemory(client, slot.guest)
          : new ForeignCopyMemory(client, slot.guest)
        : mode === "thread"
          ? new GrantMapMemory(client, slot.guest)
          : new GrantCopyMemory(client, slot.guest);
      const bus: DeviceBus = {
        guest: slot.guest,
        memory,
        restricted: grants,
        irqPort,
        raiseInterrupt: () => {
          const send = client.evtchnSend(irqPort).catch(() => 0);
          sends.add(send);
          void send.finally(() => sends.delete(send));
        },
        log,
      };
      const link = netLinks.get(i);
      const device = await makeDevice(slot.device, {
        consoleOutput: (bytes) => ctl.send({ console: { slot: i, bytes } }),
        ...(link !== undefined ? { netLink: link } : {}),
      });
      served.push({ index: i, slot, transport: new VirtioMmioTransport(device, bus), irqPort });
    }
    // One IOREQ server per guest, claiming the windows of all its devices.
    for (const guest of new Set(served.map((s) => s.slot.guest))) {
      const mine = served.filter((s) => s.slot.guest === guest);
      const ranges: IoreqRange[] = mine.flatMap(({ slot: { base, size } }) => [
        { start: base, end: base + size - 1 },
        { start: base + Mmio.QUEUE_NOTIFY, end: base + Mmio.QUEUE_NOTIFY + 3, posted: true },
      ]);
      servers.push(
        await IoreqClient.create(
          client,
          guest,
          ranges,
          (addr, size, write, value) => {
            const s = mine.find((m) => addr >= m.slot.base && addr < m.slot.base + m.slot.size);
            if (s === undefined) return 0xffff_ffff;
            if (write) {
              s.transport.write(addr - s.slot.base, size, value);
              return 0;
            }
            return s.transport.read(addr - s.slot.base, size);
          },
          mode === "thread" ? "shared" : "relayed",
        ),
      );
    }
  } catch (e) {
    await shutDown(false);
    throw e;
  }
  if (boot.restarted) for (const s of served) s.transport.lostState();
  else
    try {
      // Devices that moved here with their guest take over its saved state before it runs.
      for (const s of served) if (s.slot.state !== undefined) await s.transport.setState(s.slot.state);
    } catch (e) {
      await shutDown(false);
      throw e;
    }
  // Its IOREQ servers claim the windows: the backends are connected.
  await setState(served, XenbusState.Connected);
  const guestReply = (
    id: number,
    guest: number,
    work: () => Promise<Omit<Extract<DriverDomainUp, { reply: unknown }>["reply"], "id">>,
  ) => {
    void work().then(
      (r) => ctl.send({ reply: { id, ...r } }),
      (e: unknown) => ctl.send({ reply: { id, error: `d${guest}: ${(e as Error).message ?? String(e)}` } }),
    );
  };
  ctl.onMessage((m) => {
    if ("ping" in m) ctl.send({ pong: m.ping });
    else if ("snapshot" in m) {
      const { id, guest } = m.snapshot;
      guestReply(id, guest, async () => {
        // The guest is paused: serve the doorbells it rang, let the queues finish, then look.
        for (const s of servers) if (s.guest === guest) await s.drain();
        const states = [];
        for (const s of served) if (s.slot.guest === guest) states.push(await s.transport.snapshot());
        await Promise.all(sends);
        return { states };
      });
    } else if ("detach" in m) {
      const { id, guest } = m.detach;
      guestReply(id, guest, async () => {
        for (const s of servers.filter((x) => x.guest === guest)) {
          servers.splice(servers.indexOf(s), 1);
          await s.destroy().catch(() => {});
        }
        const leaving = served.filter((x) => x.slot.guest === guest);
        for (const s of leaving) {
          served.splice(served.indexOf(s), 1);
          s.transport.write(Mmio.STATUS, 4, 0); // reset: the rings' grant mappings go back
          await s.transport.idle();
          s.transport.device.close?.();
        }
        await setState(leaving, XenbusState.Closed);
        return {};
      });
    } else if ("input" in m) {
      const d = served.find((s) => s.index === m.input.slot)?.transport.device;
      if (d instanceof ConsoleDevice) d.pushInput(m.input.bytes);
    } else if ("xsWrite" in m) {
      // Test hook: show what this domain's connection may do.
      if (!boot.faultHooks) return;
      const { id, path, value } = m.xsWrite;
      const write = xs === undefined ? Promise.reject(new Error("no XenStore connection")) : xs.write(path, value);
      void write.then(
        () => ctl.send({ reply: { id } }),
        (e: unknown) => ctl.send({ reply: { id, error: (e as Error).message } }),
      );
    } else if ("fault" in m) {
      if (boot.faultHooks) injectFault(m.fault, exit);
    } else if ("stop" in m) {
      void (async () => {
        await shutDown(true);
        ctl.send({ stopped: true });
        ctl.close();
      })();
    }
  });
  ctl.send({ ready: { domid: client.domid } });
}

/** Test hook: misbehave as a broken backend would. Only the launcher's control channel reaches it. */
function injectFault(kind: FaultKind, exit: (code: number) => never): void {
  switch (kind) {
    case "throw":
      setImmediate(() => {
        throw new Error("injected fault: a backend threw");
      });
      return;
    case "hang":
      setImmediate(() => {
        for (;;) {
          // Stops answering: no ioreq, no ping, until killed.
        }
      });
      return;
    case "exit":
      setImmediate(() => exit(3));
      return;
    case "oom": {
      const hog: number[][] = [];
      const grow = () => {
        for (let i = 0; i < 64; i++) hog.push(new Array<number>(1 << 16).fill(i));
        setImmediate(grow);
      };
      setImmediate(grow);
      return;
    }
  }
}
