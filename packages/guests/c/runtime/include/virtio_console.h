/*
 * A virtio-console driver (VirtIO 1.2 §5.3) on the virtio-mmio frontend: one port, no
 * MULTIPORT; queue 0 (receiveq) keeps VCON_RX_BUFS buffers posted for host input, queue 1
 * (transmitq) sends output synchronously. VIRTIO_CONSOLE_F_SIZE gives cols/rows,
 * VIRTIO_CONSOLE_F_EMERG_WRITE a one-byte emergency write through config space.
 *
 * The buffers the backend may touch live in pages of their own (one page of receive buffers,
 * device-writable; one transmit page, device-readable), so a grant exposes nothing else.
 */
#ifndef XENON_VIRTIO_CONSOLE_H
#define XENON_VIRTIO_CONSOLE_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_CONSOLE_F_SIZE (1u << 0)
#define VIRTIO_CONSOLE_F_MULTIPORT (1u << 1)
#define VIRTIO_CONSOLE_F_EMERG_WRITE (1u << 2)
#define VCON_RX_BUFS 4
#define VCON_RX_BYTES 1024

struct vcon {
  struct virtio_dev dev;
  uint16_t cols, rows; /* 0 without F_SIZE */
  int emerg;           /* F_EMERG_WRITE negotiated */
  int8_t head_buf[VIRTQ_MAX]; /* receive buffer of each in-flight head */
  int cur;                    /* receive buffer being read (-1: none) */
  uint32_t cur_len, cur_off;
  uint32_t rx_bytes, tx_bytes;
};

/* Finds the `nth` virtio-console, negotiates, sets both queues up and posts the receive buffers. */
int vcon_init(struct vcon *c, unsigned nth);
/* Writes all `len` bytes through the transmitq; 0 or a negative Xen errno. */
int vcon_write(struct vcon *c, const void *buf, uint32_t len);
/* Reads up to `max` bytes of host input; waits for some when `block`. Bytes, or a negative Xen errno. */
long vcon_read(struct vcon *c, void *buf, uint32_t max, int block);
/* One byte through emerg_wr (F_EMERG_WRITE); -XEN_EOPNOTSUPP without it. */
int vcon_emerg_write(struct vcon *c, char ch);

#endif
