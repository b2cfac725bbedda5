/**
 * A driver domain's kernel (worker thread entry): a TypeScript domain with its hypercall port,
 * event loop and grant mapper, serving one virtio-mmio device to one guest through an IOREQ
 * server. Guest memory is reached only through the guest's grants (GrantMapMemory): with no
 * foreign-mapping privilege, an ungranted page is out of reach.
 */
import { workerData } from "node:worker_threads";
import { HypercallClient } from "@xenon/hypervisor";
import { BlkDevice } from "../virtio/blk/device.js";
import type { DeviceBus } from "../virtio/bus.js";
import { Mmio } from "../virtio/constants.js";
import type { VirtioDevice } from "../virtio/device.js";
import { GrantMapMemory } from "../virtio/grant_map_memory.js";
import { VirtioMmioTransport } from "../virtio/mmio_transport.js";
import { RngDevice } from "../virtio/rng/device.js";
import { IoreqClient } from "./ioreq_client.js";
import type { DriverDomainDown, DriverDomainUp, DriverDomainWorkerData, VirtioDeviceSpec } from "./protocol.js";

const wd = workerData as DriverDomainWorkerData;
const up = (m: DriverDomainUp) => wd.control.postMessage(m);

function makeDevice(spec: VirtioDeviceSpec): Promise<VirtioDevice> {
  switch (spec.kind) {
    case "rng":
      return Promise.resolve(new RngDevice());
    case "blk":
      return Promise.resolve(new BlkDevice({ path: spec.path, readOnly: spec.readOnly ?? false }));
    default:
      return Promise.reject(new Error(`no such device model: ${(spec as { kind: string }).kind}`));
  }
}

async function main(): Promise<void> {
  const client = await HypercallClient.connect(wd.hypercall);
  const memory = new GrantMapMemory(client, wd.guest);
  const bus: DeviceBus = {
    guest: wd.guest,
    memory,
    restricted: true,
    raiseInterrupt: () => {
      void client.evtchnSend(wd.irqPort).catch(() => {});
    },
    log: (line) => up({ log: line }),
  };
  const transport = new VirtioMmioTransport(await makeDevice(wd.device), bus);
  const loop = client.eventLoop().catch(() => {});
  const base = wd.base;
  const ioreq = await IoreqClient.create(
    client,
    wd.guest,
    [
      { start: base, end: base + wd.size - 1 },
      { start: base + Mmio.QUEUE_NOTIFY, end: base + Mmio.QUEUE_NOTIFY + 3, posted: true },
    ],
    (addr, size, write, value) => {
      if (write) {
        transport.write(addr - base, size, value);
        return 0;
      }
      return transport.read(addr - base, size);
    },
  );
  wd.control.on("message", (m: DriverDomainDown) => {
    if (!("stop" in m)) return;
    void (async () => {
      await ioreq.destroy().catch(() => {});
      client.close();
      await loop;
      up({ stopped: true });
      wd.control.close();
    })();
  });
  up({ ready: { domid: client.domid } });
}

main().catch((e: unknown) => up({ failed: (e as Error).message ?? String(e) }));
