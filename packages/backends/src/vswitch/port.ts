/**
 * What plugs into the switch (a bridge port in Linux/Xen terms): a vif of a local guest (its
 * net driver domain, over a MessagePort), or any other transport that carries Ethernet frames —
 * a link to another host's switch, say. The switch sees only this interface.
 */
export interface SwitchPort {
  /** Port name for logs and counters ("vif5.0": domain 5, device 0, as xl names vifs). */
  readonly name: string;
  /** The switch hands the port a frame to send to its peer; the port owns `frame` from now on. */
  deliver(frame: Uint8Array): void;
  /** Called once, at plug time: the port calls `ingress` with each frame its peer sends in. */
  attach(ingress: (frame: Uint8Array) => void): void;
  /** Called when the port is unplugged (release the transport). */
  detach?(): void;
  /**
   * An uplink to another host's switch (the pool's L2 network, a full mesh): frames that came in
   * on one uplink never go out on another (split horizon), so the mesh has no loops.
   */
  readonly uplink?: boolean;
}

/** Per-port counters, named from the port's side as `ip -s link` does for a bridge port. */
export interface PortCounters {
  /** Frames and bytes that came in from the port's peer. */
  rxPackets: number;
  rxBytes: number;
  /** Frames that came in malformed (runt, oversized, group or zero source MAC) and were dropped. */
  rxErrors: number;
  /** Frames and bytes handed to the port. */
  txPackets: number;
  txBytes: number;
  /** Frames the switch did not forward: destination learned on the ingress port (no hairpin). */
  filtered: number;
}

export function newCounters(): PortCounters {
  return { rxPackets: 0, rxBytes: 0, rxErrors: 0, txPackets: 0, txBytes: 0, filtered: 0 };
}
