/*
 * A small virtio-mmio (version 2) frontend over VirtIO-Grant: devices found in the device tree
 * (`virtio,mmio` nodes, `iommus = <&xen_grant_dma BACKEND>`), split virtqueues whose rings and
 * buffers are granted to the backend domain and addressed as grant-DMA addresses
 * (bit 63 | gref << 12 | offset). The device's interrupt is an event-channel port (the node's
 * `interrupts` cell).
 *
 * Requests are chains of up to VIRTQ_MAX_BUFS buffers; several may be in flight per queue
 * (virtio_submit / virtio_notify / virtio_get_used), or one at a time (virtio_request). With
 * VIRTIO_F_INDIRECT_DESC a chain of two or more buffers may take one ring descriptor pointing at an
 * indirect table: only when the ring is short of free descriptors, because over grants the table
 * costs the backend one more grant map per request (the ring itself stays mapped), unless
 * `indirect_desc=2` asks for it on every chain of two or more. With VIRTIO_F_EVENT_IDX the driver
 * kicks only when the device's avail_event asks and asks for interrupts through used_event. Both
 * are negotiated when the device offers them, unless the boot arguments say `indirect_desc=0` /
 * `event_idx=0`. `virtio_poll=1` asks for no interrupts at all (used_event never reached, or
 * VIRTQ_AVAIL_F_NO_INTERRUPT) and polls used.idx.
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

/* Feature bits: word 0 (bits 0..31) and word 1 (bits 32..63, `_HI`). */
#define VIRTIO_F_INDIRECT_DESC (1u << 28)
#define VIRTIO_F_EVENT_IDX (1u << 29)
#define VIRTIO_F_VERSION_1_HI (1u << 0)
#define VIRTIO_F_ACCESS_PLATFORM_HI (1u << 1)

/* Device status bits. */
#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 0x40
#define VIRTIO_S_FAILED 0x80

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Queue entries at most (each ring area fits one page), buffers per request at most. */
#define VIRTQ_MAX 32
#define VIRTQ_MAX_BUFS 4
#define VIRTIO_MAX_QUEUES 2

#ifndef XEN_EIO
#define XEN_EIO 5
#endif

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

/* Grants held by one in-flight request (per head descriptor). */
struct virtq_req {
  uint8_t busy;
  uint8_t nbufs;
  uint8_t ndesc; /* ring descriptors used (1 when indirect) */
  grant_ref_t ref[VIRTQ_MAX_BUFS];
  uint16_t count[VIRTQ_MAX_BUFS];
};

struct virtq {
  unsigned index;
  unsigned size; /* 0: not set up */
  volatile struct virtq_desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
  volatile uint32_t *used;  /* flags|idx word, then {id, len} pairs, then avail_event (u16) */
  volatile struct virtq_desc *indirect; /* VIRTQ_MAX tables of VIRTQ_MAX_BUFS entries */
  uint64_t indirect_dma;
  grant_ref_t ring_ref[4]; /* desc, avail, used, indirect (0: none) */
  uint16_t avail_idx;
  uint16_t last_used;
  uint16_t kicked_idx; /* avail.idx at the last notify decision (EVENT_IDX's old) */
  uint16_t free_head;
  uint16_t num_free;
  uint16_t next_free[VIRTQ_MAX];
  struct virtq_req req[VIRTQ_MAX];
  uint32_t kicks, kicks_skipped;
};

struct virtio_dev {
  uint32_t base;
  uint32_t device_id;
  evtchn_port_t port;
  uint32_t backend;   /* backend domid (from iommus) */
  int grants;         /* 1: rings and buffers go through grants */
  int event_idx;      /* VIRTIO_F_EVENT_IDX negotiated */
  int indirect;       /* VIRTIO_F_INDIRECT_DESC negotiated */
  int indirect_always; /* indirect_desc=2: every chain of 2+ buffers (else only when short of descriptors) */
  int poll;           /* virtio_poll=1: no interrupts, poll used.idx */
  int bound;          /* interrupt handler bound */
  uint32_t features_lo; /* device bits accepted */
  uint32_t asked_lo, optional_lo; /* what virtio_negotiate was asked for (a recovery asks again) */
  uint32_t resets;      /* recoveries after the backend was lost (virtio_recover) */
  volatile uint32_t irqs;
  uint32_t grant_leaks; /* grants the backend still held when a request or ring ended */
  struct virtq queues[VIRTIO_MAX_QUEUES];
};

/* One buffer of a request: guest memory [addr, addr+len), device-writable or not. */
struct virtio_buf {
  void *addr;
  uint32_t len;
  int device_writes;
};

/* Finds the `nth` (0-based) device tree node for a virtio device of `device_id`. 0 or -XEN_ENODEV. */
int virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *dev);
/*
 * Resets the device (ending the grants of any earlier setup) and negotiates VERSION_1
 * (+ ACCESS_PLATFORM under grants), the device bits `features_lo` (all required), the optional
 * bits `optional_lo` it offers, and EVENT_IDX / INDIRECT_DESC unless the boot args turn them off.
 */
int virtio_negotiate(struct virtio_dev *dev, uint32_t features_lo, uint32_t optional_lo);
/* Sets up queue `index` with at most `size` entries (its rings granted to the backend). */
int virtio_queue_setup(struct virtio_dev *dev, unsigned index, unsigned size);
/* DRIVER_OK; binds the interrupt port. */
int virtio_driver_ok(struct virtio_dev *dev);
/* Status 0 (device reset), then ends the grants of the rings and of requests in flight. */
void virtio_reset(struct virtio_dev *dev);

/*
 * Adds a request (grants each buffer with consecutive refs, chains them, indirect when
 * negotiated and the ring is short of descriptors) and publishes it in the avail ring without notifying. Its head, or -XEN_ENOSPC
 * (no free descriptors or grant refs), -XEN_EINVAL.
 */
int virtio_submit(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n);
/* Notifies the device of what was submitted, unless it asked not to be (avail_event / NO_NOTIFY). */
void virtio_notify(struct virtio_dev *dev, unsigned queue);
/*
 * Takes the next used element, if any: its used length (>= 0) and *head, after ending the
 * request's grants; -XEN_EAGAIN when there is none; -XEN_EBUSY (with *head) when the backend
 * still held one of its grants.
 */
long virtio_get_used(struct virtio_dev *dev, unsigned queue, uint16_t *head);
/*
 * As virtio_get_used, but sleeps (or polls) until there is one; -XEN_EIO on DEVICE_NEEDS_RESET
 * with the driver's bits still set (a broken rule), -XEN_ENODEV when the device was lost: its
 * status reads all-ones (the backend's driver domain died and nobody serves the window) or exactly
 * DEVICE_NEEDS_RESET (a restarted backend that lost every state).
 */
long virtio_wait_used(struct virtio_dev *dev, unsigned queue, uint16_t *head);
/*
 * After -XEN_ENODEV: waits until the window answers again (a restarted backend raises a config
 * interrupt when it is up), then resets the device (ending the grants of rings and requests in
 * flight: those requests are gone and must be submitted again), renegotiates what was asked
 * before, sets the same queues up and sets DRIVER_OK. 0 (dev->resets counts it) or -errno.
 */
int virtio_recover(struct virtio_dev *dev);
/*
 * submit + notify + wait: the used length or a negative Xen errno. A lost device is recovered
 * and the request submitted again (a request is idempotent for the drivers that use this).
 */
long virtio_request(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n);

/* Reads the device status byte (e.g. to spot DEVICE_NEEDS_RESET). */
uint32_t virtio_status(struct virtio_dev *dev);
/* Reads InterruptStatus and acknowledges what it shows (the device stops raising it again); returns it. */
uint32_t virtio_ack_interrupt(struct virtio_dev *dev);
/* Config space access (offset from 0x100). */
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off);
uint16_t virtio_config16(struct virtio_dev *dev, unsigned off);
void virtio_config_write8(struct virtio_dev *dev, unsigned off, uint8_t v);
/* Raw register access (hostile-driver tests). */
uint32_t virtio_reg_read(struct virtio_dev *dev, unsigned off);
void virtio_reg_write(struct virtio_dev *dev, unsigned off, uint32_t v);
/*
 * Grants [addr, addr+len) page by page to the backend (consecutive refs, ended with
 * virtio_dma_unmap) and returns its DMA address: grant-DMA under grants, guest-physical otherwise.
 * 0 with *count 0 when no refs are free.
 */
uint64_t virtio_dma_map(struct virtio_dev *dev, const void *addr, uint32_t len, int readonly, grant_ref_t *first,
                        unsigned *count);
/* Ends the grants; 0, or -XEN_EBUSY when the backend still holds one (those refs stay in use). */
int virtio_dma_unmap(struct virtio_dev *dev, grant_ref_t first, unsigned count);

#endif
