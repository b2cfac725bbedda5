/*
 * A small virtio-mmio (version 2) frontend over VirtIO-Grant: devices found in the device tree
 * (`virtio,mmio` nodes, `iommus = <&xen_grant_dma BACKEND>`), split virtqueues whose rings and
 * buffers are granted to the backend domain and addressed as grant-DMA addresses
 * (bit 63 | gref << 12 | offset), and synchronous requests (one in flight per queue).
 * The device's interrupt is an event-channel port (the node's `interrupts` cell).
 */
#ifndef XENON_VIRTIO_H
#define XENON_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

#include "xen.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_ENTROPY 4

/* Feature bits (word 1 = bits 32..63). */
#define VIRTIO_F_VERSION_1_HI (1u << 0)
#define VIRTIO_F_ACCESS_PLATFORM_HI (1u << 1)

#define VIRTQ_MAX 16

#ifndef XEN_EIO
#define XEN_EIO 5
#endif

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq {
  unsigned index;
  unsigned size;
  volatile struct virtq_desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
  volatile uint32_t *used;  /* flags|idx word, then {id, len} pairs */
  uint16_t avail_idx;
  uint16_t last_used;
};

struct virtio_dev {
  uint32_t base;
  uint32_t device_id;
  evtchn_port_t port;
  uint32_t backend;   /* backend domid (from iommus) */
  int grants;         /* 1: rings and buffers go through grants */
  volatile uint32_t irqs;
  struct virtq queues[2];
};

/* One buffer of a request: guest memory [addr, addr+len), device-writable or not. */
struct virtio_buf {
  void *addr;
  uint32_t len;
  int device_writes;
};

/* Finds the `nth` (0-based) device tree node for a virtio device of `device_id`. 0 or -XEN_ENODEV. */
int virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *dev);
/* Resets and negotiates VERSION_1 (+ ACCESS_PLATFORM under grants) + the device bits given. */
int virtio_negotiate(struct virtio_dev *dev, uint32_t features_lo);
/* Sets up queue `index` with at most `size` entries (its rings granted to the backend). */
int virtio_queue_setup(struct virtio_dev *dev, unsigned index, unsigned size);
/* DRIVER_OK; binds the interrupt port. */
int virtio_driver_ok(struct virtio_dev *dev);
/*
 * One request: grants each buffer (consecutive refs per buffer), chains them, kicks, waits for
 * the used element, ends the grants. Returns the used length, or a negative Xen errno.
 */
long virtio_request(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n);
/* Reads the device status byte (e.g. to spot DEVICE_NEEDS_RESET). */
uint32_t virtio_status(struct virtio_dev *dev);
/* Config space access (offset from 0x100). */
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off);

#endif
