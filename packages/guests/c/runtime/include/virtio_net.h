/*
 * virtio-net driver (VirtIO 1.2 §5.1) over the virtio-mmio frontend (virtio.h): one receive queue
 * whose buffers are kept posted (each re-posted as soon as its frame is copied out), one transmit
 * queue used one frame at a time. Features: MAC (required: the address comes from config space),
 * STATUS and MTU when offered; no offloads.
 * Frames are Ethernet II without FCS: destination MAC, source MAC, ethertype, payload.
 */
#ifndef XENON_VIRTIO_NET_H
#define XENON_VIRTIO_NET_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_FRAME_MAX 1514

/* Leads every buffer on both queues (12 bytes with VERSION_1; TS: virtio/net/header.ts). */
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};

/* Receive buffers posted (each 2 KiB: header + the largest frame). */
#define VIRTIO_NET_RX_BUFS 16
#define VIRTIO_NET_RX_BUF_SIZE 2048
/* Frames in flight on the transmit queue (each in a 2 KiB buffer of its own). */
#define VIRTIO_NET_TX_BUFS 8

struct virtio_net {
  struct virtio_dev dev;
  uint8_t mac[ETH_ALEN];
  uint16_t mtu;
  uint32_t rx_packets, tx_packets, rx_errors;
  uint8_t *rx_bufs;                /* VIRTIO_NET_RX_BUFS x VIRTIO_NET_RX_BUF_SIZE, page aligned */
  int8_t head_buf[VIRTQ_MAX];      /* receive head descriptor -> buffer */
  int8_t tx_head_buf[VIRTQ_MAX];   /* transmit head descriptor -> buffer */
  uint8_t tx_busy;                 /* bit b: transmit buffer b is in flight */
  uint32_t tx_errors;
};

/* Finds the `nth` virtio-net device, negotiates, posts the receive buffers, DRIVER_OK. 0 or -errno. */
int virtio_net_open(struct virtio_net *n, unsigned nth);
/*
 * Queues one frame (ETH_HLEN..mtu + ETH_HLEN bytes) for transmission and returns without waiting
 * for it: up to VIRTIO_NET_TX_BUFS are in flight, completed ones are reclaimed on the next call
 * (waiting only when all are in flight). 0 or -errno.
 */
int virtio_net_send(struct virtio_net *n, const void *frame, uint32_t len);
/* Waits until every queued frame has been taken by the device. 0 or -errno. */
int virtio_net_flush(struct virtio_net *n);
/*
 * Waits for the next frame for at most `timeout_ms` (0: just look), copies at most `max` bytes
 * of it to `frame` and re-posts its buffer. The frame's length, 0 on timeout, or -errno
 * (-EIO: the device needs a reset).
 */
long virtio_net_recv(struct virtio_net *n, void *frame, uint32_t max, uint32_t timeout_ms);

#endif
