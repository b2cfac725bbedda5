/**
 * struct virtio_net_hdr (VirtIO 1.2 §5.1.6), declared once: it leads every buffer on both
 * queues. With VERSION_1 it always carries num_buffers, so it is 12 bytes whether or not
 * MRG_RXBUF is negotiated. The C side is packages/guests/c/runtime/include/virtio_net.h; the
 * integration test tests/src/abi_layout.test.ts checks the two against each other.
 *
 * No offloads are offered, so a transmitted header must say "no checksum, no GSO"; the device
 * writes an all-zero header (num_buffers 1) before each received frame.
 */
import { layout } from "@xenon/hypervisor";

export const VirtioNetHdr = layout.struct("virtio_net_hdr", 12, {
  flags: [0, "u8"],
  gso_type: [1, "u8"],
  hdr_len: [2, "u16"],
  gso_size: [4, "u16"],
  csum_start: [6, "u16"],
  csum_offset: [8, "u16"],
  num_buffers: [10, "u16"],
});
export const NET_HDR_SIZE = VirtioNetHdr.size;

export const NetHdrFlag = { NEEDS_CSUM: 1, DATA_VALID: 2, RSC_INFO: 4 } as const;
export const NetHdrGso = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, ECN: 0x80 } as const;

/** The receive header: nothing to say but "one buffer". */
export const RX_HDR: Uint8Array = layout.encode(VirtioNetHdr, {
  flags: 0,
  gso_type: 0,
  hdr_len: 0,
  gso_size: 0,
  csum_start: 0,
  csum_offset: 0,
  num_buffers: 1,
});

/** Why a transmit header is refused (an offload that was not negotiated), or null. */
export function txHeaderProblem(hdr: Uint8Array): string | null {
  const h = layout.decode(VirtioNetHdr, hdr);
  if (h.flags !== 0) return `flags 0x${h.flags.toString(16)} without checksum offload`;
  if (h.gso_type !== NetHdrGso.NONE) return `gso_type ${h.gso_type} without GSO`;
  return null;
}
