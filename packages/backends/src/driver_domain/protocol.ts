/**
 * The driver domain's worker boundary: what the launcher hands the worker (workerData) and the
 * control messages between them (structured clone).
 *
 *   launcher -> domain  { stop: true }
 *   domain -> launcher  { ready: { domid } } | { failed } | { log } | { stopped }
 */
import type { MessagePort } from "node:worker_threads";

/** Which device model the driver domain runs. */
export type VirtioDeviceSpec =
  | { readonly kind: "rng" }
  | { readonly kind: "blk"; readonly path: string; readonly readOnly?: boolean };

export interface DriverDomainWorkerData {
  readonly hypercall: MessagePort;
  readonly control: MessagePort;
  /** The frontend guest. */
  readonly guest: number;
  /** The virtio-mmio window in the guest (base, bytes). */
  readonly base: number;
  readonly size: number;
  /** Our end of the interrupt's interdomain event channel. */
  readonly irqPort: number;
  readonly device: VirtioDeviceSpec;
}

export type DriverDomainDown = { stop: true };
export type DriverDomainUp = { ready: { domid: number } } | { failed: string } | { log: string } | { stopped: true };
