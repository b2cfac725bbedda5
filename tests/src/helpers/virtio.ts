import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { VirtioBackendHandle, type VirtioDeviceSpec } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { createVcpuState, FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  buildDomainMemory,
  buildGuestFdt,
  createScheduler,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
  Hypervisor,
  initBootVcpuState,
  Machine,
  p2mPoolPagesFor,
} from "@xenon/hypervisor";

/** The guest's end of the device's interrupt channel (its tree's `interrupts` cell). */
export const GUEST_IRQ_PORT = 20;

/**
 * One guest with a virtio-rng device whose backend is a driver domain in a worker thread: the
 * guest finds the device in its tree, grants its rings and buffers, and every register access
 * travels as an ioreq. Returns the guest's console and the backend's log.
 */
export async function runVirtioGuest(
  image: string,
  bootargs: string,
  device: VirtioDeviceSpec,
): Promise<{ out: string; log: string[]; reason: number; detail?: string }> {
  const memory = new MachineMemory({ bytes: 128 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const machine = new Machine({
    hv,
    timeMode: "host",
    pools: [
      {
        id: 0,
        name: "Pool-0",
        scheduler: createScheduler("credit2"),
        pcpus: [{ id: 0, cls: "big", speed: 1024 }],
      },
    ],
  });
  const log: string[] = [];
  let backend: VirtioBackendHandle | null = null;
  try {
    const ram = 4 << 20;
    const guest = hv.domains.create({
      name: image,
      maxVcpus: 1,
      maxPages: ram / 4096 + 64,
      p2mPoolPages: p2mPoolPagesFor(ram / 4096 + 64),
      flags: { isConsole: true },
    });
    assert.ok(typeof guest === "object");
    let out = "";
    guest.console.setSink((b) => {
      out += Buffer.from(b).toString("latin1");
    });
    backend = await VirtioBackendHandle.launch(hv, {
      guest: guest.domid,
      base: GUEST_VIRTIO_MMIO_BASE,
      size: GUEST_VIRTIO_MMIO_SIZE,
      guestIrqPort: GUEST_IRQ_PORT,
      device,
      log: (l) => log.push(l),
    });
    const fdt = buildGuestFdt({
      domid: guest.domid,
      name: image,
      vcpus: 1,
      ramBytes: ram,
      bootargs,
      virtio: [
        {
          base: GUEST_VIRTIO_MMIO_BASE,
          size: GUEST_VIRTIO_MMIO_SIZE,
          evtchn: GUEST_IRQ_PORT,
          backendDomid: backend.domid,
          grants: true,
        },
      ],
    });
    const placement = buildDomainMemory(guest, readFileSync(guestImagePath(image)), ram, fdt);
    const state = createVcpuState();
    initBootVcpuState(state, placement, 0);
    machine.addDomain(guest, 0, state);
    const ends = await Promise.race([
      machine.run(),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out; console:\n${out}`)), 30_000).unref()),
    ]);
    const end = ends.find((e) => e.domid === guest.domid)!;
    return { out, log, reason: end.reason, ...(end.detail !== undefined ? { detail: end.detail } : {}) };
  } finally {
    await backend?.close();
    await machine.close();
  }
}
