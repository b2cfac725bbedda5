/**
 * Where a transport lives: the guest's memory as this backend can reach it, the device's
 * interrupt line, and a log. The driver-domain runtime provides one over ioreqs, grants and an
 * event channel; InProcessBus (bus_inprocess.ts) provides one for unit tests, with no threads.
 */
import type { GuestMemory } from "./guest_memory.js";

export interface DeviceBus {
  /** The frontend (guest) domid. */
  readonly guest: number;
  readonly memory: GuestMemory;
  /**
   * True when the guest reaches the device through grants (restricted memory access): the
   * transport then offers VIRTIO_F_ACCESS_PLATFORM and requires the driver to accept it.
   */
  readonly restricted: boolean;
  /** Signals the device's interrupt (edge: once per call). */
  raiseInterrupt(): void;
  /**
   * The interrupt's event channel (this domain's end), for guest memories that can send it in the
   * same call that ends a request (GuestMemory.releasePublish). Absent: raiseInterrupt only.
   */
  readonly irqPort?: number;
  log(line: string): void;
}
