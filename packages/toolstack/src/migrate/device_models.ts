/**
 * Device models move with their domain (libxl saves QEMU's state in EMULATOR_CONTEXT records the
 * same way): once the domain is paused and off the pCPUs, the source's device models answer what
 * the guest still asked of them and hand over their state; the destination starts its own from
 * that state before the domain runs. The source's keep serving until the destination has the
 * domain, so a migration that fails anywhere leaves the guest running with its devices as they were.
 */
import type { Hypervisor } from "@xenon/hypervisor";

/** One device model's saved state, as EMULATOR_CONTEXT carries it. */
export interface EmulatorState {
  readonly id: number;
  readonly index: number;
  readonly data: Uint8Array;
}

/** The sending host's side. */
export interface DeviceModelSource {
  /**
   * The domain is paused and off every pCPU, and no vCPU waits for a device model: return the
   * state of each of its device models (none: an empty list). Throws if one cannot be saved.
   */
  save(domid: number): Promise<readonly EmulatorState[]>;
  /** The destination runs the domain: the device models let go of it (the source domain goes next). */
  release(domid: number): Promise<void>;
}

/** The receiving host's side. */
export interface DeviceModelTarget {
  /**
   * The restored domain exists, paused, as `domid`: start its device models from their saved
   * state. Throws if it cannot (the restore then fails and the domain is destroyed).
   */
  start(domid: number, emulators: readonly EmulatorState[]): Promise<void>;
}

/**
 * Waits until no vCPU of `domid` waits for a device model (a paused vCPU's outstanding request is
 * still answered; its device model must see it through before its state is taken).
 */
export async function awaitDeviceModels(hv: Hypervisor, domid: number, timeoutMs = 5000): Promise<void> {
  const d = hv.domains.get(domid);
  if (d === undefined) return;
  const until = performance.now() + timeoutMs;
  while (d.vcpus.some((v) => hv.ioreq.isWaiting(domid, v.id))) {
    if (performance.now() > until)
      throw new Error(`domain ${domid}: a device model did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
