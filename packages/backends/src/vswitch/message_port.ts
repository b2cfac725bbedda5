/**
 * Both ends of a vif's MessagePort (protocol.ts): the switch's port on the host and the net
 * device's link in the driver domain. Frames are transferred, not copied.
 */
import type { MessagePort } from "node:worker_threads";
import type { NetLink } from "../virtio/net/link.js";
import type { SwitchPort } from "./port.js";
import { frameOf, messageOf } from "./protocol.js";

const NOT_A_FRAME = new Uint8Array(0);

function post(port: MessagePort, frame: Uint8Array): void {
  const m = messageOf(frame);
  port.postMessage(m, [m]);
}

/** The switch side of a vif. */
export class MessagePortSwitchPort implements SwitchPort {
  constructor(
    readonly name: string,
    private readonly port: MessagePort,
  ) {}

  deliver(frame: Uint8Array): void {
    post(this.port, frame);
  }

  attach(ingress: (frame: Uint8Array) => void): void {
    // A message that is not a frame reaches the switch as an empty one: dropped, counted in rxErrors.
    this.port.on("message", (m: unknown) => ingress(frameOf(m) ?? NOT_A_FRAME));
    // The driver domain's lifetime, not this port, keeps the host running.
    this.port.unref();
  }

  detach(): void {
    this.port.close();
  }
}

/** The device side of a vif (in the driver domain). */
export class MessagePortNetLink implements NetLink {
  malformed = 0;

  constructor(private readonly port: MessagePort) {}

  transmit(frame: Uint8Array): void {
    post(this.port, frame);
  }

  onReceive(fn: (frame: Uint8Array) => void): void {
    this.port.removeAllListeners("message");
    this.port.on("message", (m: unknown) => {
      const f = frameOf(m);
      if (f === null) this.malformed++;
      else fn(f);
    });
  }

  close(): void {
    this.port.close();
  }
}
