/**
 * The vif boundary: how a net driver domain's device (a worker thread) reaches its port on the
 * host's switch (main thread). One MessagePort pair per vif, created by the launcher; one end is
 * the switch port (MessagePortSwitchPort), the other the device's link (MessagePortNetLink).
 *
 *   either direction   ArrayBuffer   exactly one Ethernet frame (destination MAC first, no FCS),
 *                                    transferred (the sender gives it up; no copy)
 *
 * Nothing else travels on the port. A message that is not an ArrayBuffer is dropped and counted
 * by the receiving end (rxErrors on the switch); frame contents are checked by the switch
 * (switch.ts) and by the device (virtio/net). Control (plug, unplug, stop) goes through the
 * driver domain's control channel, never here.
 */

/** The frame carried by a port message, or null when the message is not one. */
export function frameOf(message: unknown): Uint8Array | null {
  return message instanceof ArrayBuffer ? new Uint8Array(message) : null;
}

/** The message for `frame`: its own buffer when the frame covers all of it, else a copy. */
export function messageOf(frame: Uint8Array): ArrayBuffer {
  const b = frame.buffer;
  if (b instanceof ArrayBuffer && frame.byteOffset === 0 && frame.byteLength === b.byteLength) return b;
  return frame.slice().buffer as ArrayBuffer;
}
