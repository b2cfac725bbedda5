/**
 * The pool's L2 network: each host's switch (xenbr0) gets one uplink port per member, carrying
 * Ethernet frames as `frame` messages over the pool link, so guests on different hosts share
 * one network. The links are a full mesh, so the switch keeps split horizon on uplinks (a frame
 * from one host is never relayed to a third) and there are no loops. A link that cannot keep up
 * drops frames (counted), as a congested wire would; it never blocks the switch.
 */
import type { SwitchPort } from "@xenon/backends";
import type { PoolLink } from "./link.js";

/** Frames are dropped while this much is already queued on the link (migration data shares it). */
const MAX_QUEUED_BYTES = 4 << 20;

export class PoolUplink implements SwitchPort {
  readonly uplink = true;
  readonly name: string;
  /** Frames dropped because the link was down or congested. */
  dropped = 0;
  private ingress: ((frame: Uint8Array) => void) | null = null;

  constructor(private readonly link: PoolLink) {
    this.name = `pool-${link.peer}`;
  }

  deliver(frame: Uint8Array): void {
    if (this.link.buffered > MAX_QUEUED_BYTES || !this.link.send({ t: "frame", data: frame })) this.dropped++;
  }

  attach(ingress: (frame: Uint8Array) => void): void {
    this.ingress = ingress;
  }

  detach(): void {
    this.ingress = null;
  }

  /** A frame from the peer's switch. */
  receive(frame: Uint8Array): void {
    this.ingress?.(frame);
  }
}

/** Joins `vswitch` to every member's over the agent's links, for as long as each link is up. */
export function joinPoolNetwork(
  agent: {
    onLinkOpened(l: (link: PoolLink) => void): () => void;
    onLinkClosed(l: (link: PoolLink, reason: string) => void): () => void;
  },
  vswitch: { plug(port: SwitchPort): void; unplug(name: string): boolean },
  log: (line: string) => void,
): { frame(link: PoolLink, frame: Uint8Array): void; uplinks(): ReadonlyMap<string, PoolUplink> } {
  const uplinks = new Map<string, PoolUplink>();
  agent.onLinkOpened((link) => {
    const old = uplinks.get(link.peer);
    if (old !== undefined) vswitch.unplug(old.name);
    const port = new PoolUplink(link);
    uplinks.set(link.peer, port);
    vswitch.plug(port);
    log(`pool: xenbr0 joined to ${link.peer}'s over the link (${port.name})`);
  });
  agent.onLinkClosed((link) => {
    const port = uplinks.get(link.peer);
    if (port === undefined) return;
    uplinks.delete(link.peer);
    vswitch.unplug(port.name);
  });
  return {
    frame: (link, frame) => uplinks.get(link.peer)?.receive(frame),
    uplinks: () => uplinks,
  };
}
