/**
 * The host's virtual switch: the bridge the vifs plug into (xenbr0 in a Xen host). A learning
 * Ethernet switch: each frame's source MAC is learned on its ingress port; a frame to a learned
 * unicast MAC goes to that port only, a frame to a group (broadcast, multicast) or unknown MAC is
 * flooded to every other port. Never back out of the ingress port (no hairpin). Malformed frames
 * (shorter than an Ethernet header, longer than the MTU allows, a group or all-zero source MAC)
 * are dropped and counted on the ingress port.
 *
 * It runs on the host's main thread; ports are anything implementing SwitchPort. Delivery is
 * synchronous and the switch keeps no frames: flow control is the ports' business (a vif's
 * device has a bounded backlog).
 */
import { ETH_DATA_LEN, ETH_HLEN, formatMac, isGroupMac, MAX_MTU, macAt } from "./ethernet.js";
import { DEFAULT_AGEING_MS, DEFAULT_FDB_MAX, ForwardingDatabase } from "./fdb.js";
import { newCounters, type PortCounters, type SwitchPort } from "./port.js";

export interface VirtualSwitchOptions {
  /** Bridge name (default "xenbr0"). */
  readonly name?: string;
  /** Largest payload carried (default 1500): frames up to mtu + 14 bytes. */
  readonly mtu?: number;
  readonly ageingMs?: number;
  readonly fdbMax?: number;
  /** Clock in ms (tests pass their own). */
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

interface Plugged {
  readonly id: number;
  readonly port: SwitchPort;
  readonly counters: PortCounters;
}

export class VirtualSwitch {
  readonly name: string;
  readonly mtu: number;
  readonly fdb: ForwardingDatabase;
  private readonly ports = new Map<number, Plugged>();
  private readonly byName = new Map<string, Plugged>();
  private nextId = 1;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly maxFrame: number;
  private lastExpire = 0;
  /** Frames flooded (group or unknown destination) and forwarded to one port. */
  flooded = 0;
  forwarded = 0;

  constructor(o: VirtualSwitchOptions = {}) {
    this.name = o.name ?? "xenbr0";
    this.mtu = o.mtu ?? ETH_DATA_LEN;
    if (!Number.isInteger(this.mtu) || this.mtu < 68 || this.mtu > MAX_MTU)
      throw new RangeError(`${this.name}: MTU ${this.mtu} (68..${MAX_MTU})`);
    this.maxFrame = this.mtu + ETH_HLEN;
    this.fdb = new ForwardingDatabase(o.ageingMs ?? DEFAULT_AGEING_MS, o.fdbMax ?? DEFAULT_FDB_MAX);
    this.now = o.now ?? (() => performance.now());
    this.log = o.log ?? (() => {});
  }

  /** Plugs a port in; its name must be unique on this switch. */
  plug(port: SwitchPort): void {
    if (this.byName.has(port.name)) throw new Error(`${this.name}: port ${port.name} already plugged`);
    const p: Plugged = { id: this.nextId++, port, counters: newCounters() };
    this.ports.set(p.id, p);
    this.byName.set(port.name, p);
    port.attach((frame) => this.ingress(p, frame));
  }

  /** Unplugs a port: its learned MACs are forgotten; later frames from it are ignored. */
  unplug(name: string): boolean {
    const p = this.byName.get(name);
    if (p === undefined) return false;
    this.ports.delete(p.id);
    this.byName.delete(name);
    this.fdb.flushPort(p.id);
    p.port.detach?.();
    return true;
  }

  portNames(): string[] {
    return [...this.byName.keys()];
  }

  counters(name: string): Readonly<PortCounters> | undefined {
    return this.byName.get(name)?.counters;
  }

  /** Learned MACs as [mac, port name] (brctl showmacs). */
  macs(): Array<[string, string]> {
    const names = new Map([...this.ports.values()].map((p) => [p.id, p.port.name]));
    return this.fdb.list(this.now()).map(([mac, id]) => [formatMac(mac), names.get(id) ?? "?"]);
  }

  private ingress(from: Plugged, frame: Uint8Array): void {
    if (this.ports.get(from.id) !== from) return; // unplugged: its transport may still be draining
    const c = from.counters;
    const len = frame.length;
    if (len < ETH_HLEN || len > this.maxFrame) {
      c.rxErrors++;
      return;
    }
    const src = macAt(frame, 6);
    if (src === 0 || isGroupMac(src)) {
      c.rxErrors++;
      return;
    }
    c.rxPackets++;
    c.rxBytes += len;
    const now = this.now();
    if (now - this.lastExpire > this.fdb.ageingMs / 4) {
      this.lastExpire = now;
      this.fdb.expire(now);
    }
    this.fdb.learn(src, from.id, now);
    const dst = macAt(frame, 0);
    if (!isGroupMac(dst)) {
      const to = this.fdb.lookup(dst, now);
      if (to === from.id) {
        c.filtered++;
        return;
      }
      const p = to < 0 ? undefined : this.ports.get(to);
      if (p !== undefined && from.port.uplink === true && p.port.uplink === true) {
        c.filtered++; // split horizon: another host's frame is never relayed to a third
        return;
      }
      if (p !== undefined) {
        this.forwarded++;
        this.send(p, frame);
        return;
      }
    }
    this.flood(from, frame);
  }

  private flood(from: Plugged, frame: Uint8Array): void {
    this.flooded++;
    let last: Plugged | null = null;
    const fromUplink = from.port.uplink === true;
    for (const p of this.ports.values()) {
      if (p === from || (fromUplink && p.port.uplink === true)) continue;
      // Each port owns what it is given: all but the last get a copy.
      if (last !== null) this.send(last, frame.slice());
      last = p;
    }
    if (last !== null) this.send(last, frame);
  }

  private send(p: Plugged, frame: Uint8Array): void {
    p.counters.txPackets++;
    p.counters.txBytes += frame.length;
    try {
      p.port.deliver(frame);
    } catch (e) {
      // A broken transport is the port's problem, never the switch's or the other ports'.
      this.log(`${this.name}: port ${p.port.name}: deliver failed: ${(e as Error).message}`);
    }
  }
}
