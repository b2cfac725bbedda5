/**
 * Starting a virtio driver domain (thread mode) from the host: the domain is created in the core
 * (unprivileged, no RAM of its own), named device model for its guest (XEN_DOMCTL_set_target),
 * linked to the guest by the device's interrupt channel (a static interdomain event channel: the
 * guest's end is the port in its device tree), given a hypercall port, and its kernel (main.ts)
 * runs in a worker thread. Only the guest's grants let it reach guest memory.
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { evtchnBindStatic, type Hypervisor, p2mPoolPagesFor, servePort } from "@xenon/hypervisor";
import type { DriverDomainDown, DriverDomainUp, DriverDomainWorkerData, VirtioDeviceSpec } from "./protocol.js";

export interface VirtioBackendOptions {
  readonly guest: number;
  /** The guest's virtio-mmio window. */
  readonly base: number;
  readonly size: number;
  /** The guest's end of the interrupt channel (its device tree's `interrupts` cell). */
  readonly guestIrqPort: number;
  readonly device: VirtioDeviceSpec;
  /** The driver domain's domid (default: the lowest free one). */
  readonly domid?: number;
  /** Driver domain name (default "virtio-<kind>-d<guest>"). */
  readonly name?: string;
  readonly log?: (line: string) => void;
}

/** The driver domain's end of the interrupt channel (fixed: a fresh domain has it free). */
const DD_IRQ_PORT = 1;

export class VirtioBackendHandle {
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly hv: Hypervisor,
    private readonly worker: Worker,
    private readonly control: MessagePort,
    readonly domid: number,
  ) {}

  static async launch(hv: Hypervisor, o: VirtioBackendOptions): Promise<VirtioBackendHandle> {
    const d = hv.domains.create({
      ...(o.domid !== undefined ? { domid: o.domid } : {}),
      name: o.name ?? `virtio-${o.device.kind}-d${o.guest}`,
      maxVcpus: 1,
      maxPages: 0,
      p2mPoolPages: p2mPoolPagesFor(0),
    });
    if (typeof d === "number") throw new Error(`driver domain creation failed (${d})`);
    const guest = hv.domains.get(o.guest);
    if (guest === undefined) throw new Error(`no guest d${o.guest}`);
    hv.ioreq.setDmTarget(d.domid, o.guest, true);
    const rc = evtchnBindStatic(guest, o.guestIrqPort, d, DD_IRQ_PORT);
    if (rc < 0) {
      hv.domains.destroy(d.domid);
      throw new Error(`interrupt channel d${o.guest}:${o.guestIrqPort} refused (${rc})`);
    }
    const hc = new MessageChannel();
    servePort(hv, d.domid, hc.port1);
    const ctl = new MessageChannel();
    const data: DriverDomainWorkerData = {
      hypercall: hc.port2,
      control: ctl.port2,
      guest: o.guest,
      base: o.base,
      size: o.size,
      irqPort: DD_IRQ_PORT,
      device: o.device,
    };
    const worker = new Worker(new URL("./main.js", import.meta.url), {
      workerData: data,
      transferList: [hc.port2, ctl.port2],
    });
    return new Promise((resolve, reject) => {
      const onMsg = (m: DriverDomainUp) => {
        if ("log" in m) o.log?.(m.log);
        else if ("failed" in m) {
          void worker.terminate();
          hv.domains.destroy(d.domid);
          reject(new Error(`driver domain d${d.domid}: ${m.failed}`));
        } else if ("ready" in m) resolve(new VirtioBackendHandle(hv, worker, ctl.port1, d.domid));
      };
      ctl.port1.on("message", onMsg);
      worker.once("error", (e) => reject(e));
    });
  }

  /** Stops the device model, ends the worker and destroys the driver domain. */
  close(): Promise<void> {
    this.stopping ??= (async () => {
      const stopped = new Promise<void>((resolve) => {
        this.control.on("message", (m: DriverDomainUp) => {
          if ("stopped" in m) resolve();
        });
      });
      this.control.postMessage({ stop: true } satisfies DriverDomainDown);
      await Promise.race([stopped, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      this.control.close();
      await this.worker.terminate();
      this.hv.domains.destroy(this.domid);
    })();
    return this.stopping;
  }
}
