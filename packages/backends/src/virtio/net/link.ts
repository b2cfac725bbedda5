/**
 * The net device's side of its switch port (the vif's backend end, as netback's link to the
 * bridge): frames out, frames in. The driver-domain runtime gives it one over a MessagePort
 * (vswitch/message_port.ts); unit tests plug the device straight into an in-process switch.
 */
export interface NetLink {
  /** Sends one Ethernet frame (no FCS) to the switch; the link owns `frame` from now on. */
  transmit(frame: Uint8Array): void;
  /** Registers the receiver of frames from the switch (one; later calls replace it). */
  onReceive(fn: (frame: Uint8Array) => void): void;
}
