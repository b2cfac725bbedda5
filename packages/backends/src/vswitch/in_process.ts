/**
 * A vif with both ends in one thread: a SwitchPort for the switch and the NetLink for a device,
 * joined by plain calls. For unit tests and tools (and as the bench's no-thread baseline); the
 * driver domains use message_port.ts.
 */
import type { NetLink } from "../virtio/net/link.js";
import type { SwitchPort } from "./port.js";

export function inProcessVif(name: string): { port: SwitchPort; link: NetLink } {
  let toSwitch: (frame: Uint8Array) => void = () => {};
  let toDevice: (frame: Uint8Array) => void = () => {};
  const port: SwitchPort = {
    name,
    deliver: (frame) => toDevice(frame),
    attach: (ingress) => {
      toSwitch = ingress;
    },
    detach: () => {
      toSwitch = () => {};
    },
  };
  const link: NetLink = {
    transmit: (frame) => toSwitch(frame),
    onReceive: (fn) => {
      toDevice = fn;
    },
  };
  return { port, link };
}
