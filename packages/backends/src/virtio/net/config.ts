/**
 * virtio-net feature bits and config space (VirtIO 1.2 §5.1.3, §5.1.4). The config space is
 * struct virtio_net_config: mac[6] at 0, status u16 at 6, max_virtqueue_pairs u16 at 8, mtu u16
 * at 10. Fields exist only with their feature (MAC, STATUS, MQ, MTU); we offer MAC, STATUS and
 * MTU, so max_virtqueue_pairs reads as 1 (it is defined but unused without MQ).
 */
import { macBytes } from "../../vswitch/ethernet.js";

export const NetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  HOST_TSO4: 11,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  MQ: 22,
} as const;

export const NetStatus = { LINK_UP: 1, ANNOUNCE: 2 } as const;

export const NetConfigOffset = { MAC: 0, STATUS: 6, MAX_VIRTQUEUE_PAIRS: 8, MTU: 10 } as const;
export const NET_CONFIG_SIZE = 12;

/** The device's config space bytes; reads past them are 0 (transport rule). */
export class NetConfig {
  readonly bytes = new Uint8Array(NET_CONFIG_SIZE);

  constructor(mac: number, mtu: number) {
    this.bytes.set(macBytes(mac), NetConfigOffset.MAC);
    this.setU16(NetConfigOffset.MAX_VIRTQUEUE_PAIRS, 1);
    this.setU16(NetConfigOffset.MTU, mtu);
  }

  get status(): number {
    return this.bytes[NetConfigOffset.STATUS]! | (this.bytes[NetConfigOffset.STATUS + 1]! << 8);
  }
  set status(v: number) {
    this.setU16(NetConfigOffset.STATUS, v);
  }

  read(off: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.bytes[off + i] ?? 0);
    return v >>> 0;
  }

  private setU16(off: number, v: number): void {
    this.bytes[off] = v & 0xff;
    this.bytes[off + 1] = (v >>> 8) & 0xff;
  }
}
