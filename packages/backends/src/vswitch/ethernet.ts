/**
 * Ethernet II framing as the switch and the net device see it (IEEE 802.3 §3.1): destination MAC,
 * source MAC, ethertype, payload. No FCS: frames between vifs carry none, as on a Linux bridge.
 * A MAC is kept as a 48-bit number (exact in a double) so the learning table keys on a number.
 */

/** Destination + source + ethertype. */
export const ETH_HLEN = 14;
export const ETH_ALEN = 6;
/** Default payload bytes per frame (RFC 894 Ethernet). */
export const ETH_DATA_LEN = 1500;
/** Largest MTU the switch and the device accept (IP's limit; jumbo frames fit). */
export const MAX_MTU = 65_535;
/** Xen's OUI for generated vif MACs (what xl uses: 00:16:3e:xx:xx:xx). */
export const XEN_OUI = [0x00, 0x16, 0x3e] as const;
export const BROADCAST_MAC = 0xffff_ffff_ffff;

/** The 48-bit MAC at `off` of `frame` (caller checked the length). */
export function macAt(frame: Uint8Array, off: number): number {
  return (
    frame[off]! * 2 ** 40 +
    frame[off + 1]! * 2 ** 32 +
    ((frame[off + 2]! << 24) >>> 0) +
    (frame[off + 3]! << 16) +
    (frame[off + 4]! << 8) +
    frame[off + 5]!
  );
}

/** Group (multicast or broadcast) addresses have the I/G bit, bit 0 of the first octet. */
export function isGroupMac(mac: number): boolean {
  return Math.floor(mac / 2 ** 40) % 2 === 1;
}

/** "00:16:3e:0a:0b:0c" -> 48-bit number, or null when malformed. */
export function parseMac(s: string): number | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
  if (m === null) return null;
  let v = 0;
  for (let i = 1; i <= 6; i++) v = v * 256 + Number.parseInt(m[i]!, 16);
  return v;
}

export function formatMac(mac: number): string {
  return macBytes(mac)
    .reduce<string[]>((a, b) => {
      a.push(b.toString(16).padStart(2, "0"));
      return a;
    }, [])
    .join(":");
}

export function macBytes(mac: number): Uint8Array {
  const b = new Uint8Array(ETH_ALEN);
  let v = mac;
  for (let i = 5; i >= 0; i--) {
    b[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return b;
}

/** The MAC xl would give vif `devid` of domain `domid` when none is configured (Xen OUI, stable). */
export function defaultVifMac(domid: number, devid: number): number {
  return XEN_OUI[0] * 2 ** 40 + XEN_OUI[1] * 2 ** 32 + XEN_OUI[2] * 2 ** 24 + (domid & 0xffff) * 256 + (devid & 0xff);
}
