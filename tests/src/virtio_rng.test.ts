import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { VirtioBackendHandle } from "@xenon/backends";
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
const GUEST_IRQ_PORT = 20;

/**
 * One guest with a virtio-rng device whose backend is a driver domain in a worker thread: the
 * guest finds the device in its tree, grants its rings and buffers, and every register access
 * travels as an ioreq. Returns the guest's console and the backend's log.
 */
async function runRngcat(bootargs: string): Promise<{ out: string; log: string[]; reason: number; detail?: string }> {
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
      name: "rngcat",
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
      device: { kind: "rng" },
      log: (l) => log.push(l),
    });
    const fdt = buildGuestFdt({
      domid: guest.domid,
      name: "rngcat",
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
    const placement = buildDomainMemory(guest, readFileSync(guestImagePath("rngcat")), ram, fdt);
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

describe("virtio-rng through an IOREQ server in a driver domain, grants only", () => {
  it("rngcat finds the device in its tree and reads random bytes", async () => {
    const r = await runRngcat("bytes=48 rounds=3");
    assert.match(r.out, /^rngcat: device at 0x2000000 port 20 backend d\d+ grants 1$/m, r.out);
    const lines = r.out.split("\n").filter((l) => /^rngcat: [0-9a-f]{64}$/.test(l));
    assert.equal(lines.length, 3, r.out);
    assert.equal(new Set(lines).size, 3, "three different draws");
    assert.match(r.out, /^rngcat: got 144 random bytes in 3 requests$/m);
    assert.equal(r.reason, 0, `${r.detail ?? ""}\n${r.out}\n${r.log.join("\n")}`);
    assert.deepEqual(r.log, [], "the backend logged no broken rule");
  });
});
