/**
 * virtio-net (device id 1, VirtIO 1.2 §5.1): one receive and one transmit queue, plugged into a
 * host virtual switch through a NetLink (the vif's backend end). Features: MAC (the config space
 * holds the vif's address), STATUS (link up while a link is attached), MTU (the largest payload
 * the switch carries). No offloads, no control queue, no multiqueue.
 *
 * Queue handling is one file per direction (rx.ts, tx.ts); the header layout is header.ts and the
 * config space config.ts.
 */
import { ETH_DATA_LEN, ETH_HLEN, formatMac, MAX_MTU } from "../../vswitch/ethernet.js";
import { DeviceId } from "../constants.js";
import type { QUEUE_WAIT, QueueIo, VirtioDevice } from "../device.js";
import type { SplitQueue } from "../split_queue.js";
import { NetConfig, NetFeature, NetStatus } from "./config.js";
import type { NetLink } from "./link.js";
import { NetRx } from "./rx.js";
import { NetTx } from "./tx.js";

export const NET_RX_QUEUE = 0;
export const NET_TX_QUEUE = 1;
const QUEUE_SIZE = 256;

export interface NetOptions {
  /** The vif's MAC (48-bit number; see vswitch/ethernet.ts parseMac). */
  readonly mac: number;
  /** Largest payload per frame (default 1500). */
  readonly mtu?: number;
  /** The switch port; frames transmitted while there is none are dropped. */
  readonly link?: NetLink;
}

export class NetDevice implements VirtioDevice {
  readonly name = "net";
  readonly deviceId = DeviceId.NET;
  readonly features: readonly [number, number] = [
    ((1 << NetFeature.MAC) | (1 << NetFeature.STATUS) | (1 << NetFeature.MTU)) >>> 0,
    0,
  ];
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE];
  readonly mac: number;
  readonly mtu: number;
  readonly rx = new NetRx();
  readonly tx: NetTx;
  private readonly config: NetConfig;
  private link: NetLink | null = null;
  private wake: (q: number) => void = () => {};
  /** True once the driver has set DRIVER_OK (frames before it are dropped: no one to read them). */
  private live = false;

  constructor(o: NetOptions) {
    const mtu = o.mtu ?? ETH_DATA_LEN;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > MAX_MTU)
      throw new RangeError(`virtio-net: MTU ${mtu} (68..${MAX_MTU})`);
    if (!Number.isInteger(o.mac) || o.mac < 0 || o.mac >= 2 ** 48) throw new RangeError(`virtio-net: MAC ${o.mac}`);
    this.mac = o.mac;
    this.mtu = mtu;
    this.config = new NetConfig(o.mac, mtu);
    this.tx = new NetTx(mtu + ETH_HLEN);
    if (o.link !== undefined) this.attach(o.link);
  }

  /** Plugs the device into its switch port: link up, frames flow. */
  attach(link: NetLink): void {
    this.link = link;
    this.config.status = NetStatus.LINK_UP;
    link.onReceive((frame) => this.receive(frame));
  }

  /** A frame from the switch for this vif. */
  receive(frame: Uint8Array): void {
    if (!this.live) {
      this.rx.stats.dropped++;
      return;
    }
    if (this.rx.enqueue(frame)) this.wake(NET_RX_QUEUE);
  }

  bindWake(wake: (queue: number) => void): void {
    this.wake = wake;
  }

  configRead(off: number, size: number): number {
    return this.config.read(off, size);
  }

  negotiated(): boolean {
    // The driver may take any subset of MAC / STATUS / MTU; the transport already refused others.
    this.live = true;
    return true;
  }

  async processQueue(q: SplitQueue, io: QueueIo): Promise<typeof QUEUE_WAIT | undefined> {
    if (q.index === NET_RX_QUEUE) return this.rx.process(q, io);
    await this.tx.process(q, io, this.link);
    return undefined;
  }

  reset(): void {
    this.live = false;
    this.rx.clear();
  }

  /** Nothing beyond the transport's state and the spec (MAC, MTU) moves with the guest. */
  getState(): { readonly version: 1 } {
    return { version: 1 };
  }

  /**
   * The guest arrived from another host: switches there and on the way still send its MAC to
   * where it was. Like QEMU's announce after a migration, the device sends a few RARP broadcasts
   * from the guest's MAC (the guest's own protocols ignore them), so every switch learns the new
   * way to it before the guest itself says anything.
   */
  setState(_s: unknown): void {
    for (const ms of [0, 100, 300, 700]) setTimeout(() => this.announce(), ms).unref?.();
  }

  private announce(): void {
    const f = new Uint8Array(60);
    f.fill(0xff, 0, 6);
    for (let i = 0; i < 6; i++) f[6 + i] = Math.floor(this.mac / 2 ** (8 * (5 - i))) & 0xff;
    f[12] = 0x80; // ethertype 0x8035: RARP
    f[13] = 0x35;
    // RARP "reverse request" for ourselves: htype 1, ptype 0x0800, hlen 6, plen 4, op 3, sha = tha = our MAC.
    f.set([0, 1, 8, 0, 6, 4, 0, 3], 14);
    f.set(f.subarray(6, 12), 22);
    f.set(f.subarray(6, 12), 32);
    this.link?.transmit(f);
  }

  /** "vif mac 00:16:3e:.. rx N/M tx N/M" for logs and stats. */
  describe(): string {
    const r = this.rx.stats;
    const t = this.tx.stats;
    return `mac ${formatMac(this.mac)} rx ${r.packets} packets ${r.bytes} bytes ${r.dropped} dropped, tx ${t.packets} packets ${t.bytes} bytes ${t.errors} errors`;
  }
}
