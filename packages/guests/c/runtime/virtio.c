/*
 * The virtio-mmio frontend (include/virtio.h). Driver steps in the order of VirtIO 1.2 §3.1.1 and
 * §4.2.3; grant-DMA encoding as Linux's grant-dma-ops (shared/reference/xen-abi.md §8).
 */
#include "virtio.h"

#include <stdio.h>
#include <string.h>

#include "events.h"
#include "fdt.h"
#include "grant.h"
#include "platform.h"
#include "stdlib.h"
#include "trap.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

/*
 * Grant refs (one grant frame): 16..31 for rings, which stay granted for the device's life;
 * 32..511 for request buffers, handed out consecutively and wrapping (each ended before reuse).
 * Refs below 16 are reserved or the runtime's.
 */
#define RING_REF 16
#define FIRST_REF 32
#define GRANT_FRAMES 1
static grant_ref_t next_ring_ref = RING_REF;
static grant_ref_t next_ref = FIRST_REF;
static int gnttab_ready;

static inline uint32_t rd(struct virtio_dev *d, unsigned off) { return *(volatile uint32_t *)(uintptr_t)(d->base + off); }
static inline void wr(struct virtio_dev *d, unsigned off, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(d->base + off) = v; }

static int has_compat(const struct fdt *f, int node, const char *want) {
  int len;
  const char *p = fdt_get_prop(f, node, "compatible", &len);
  for (int i = 0; p && i < len; i += (int)strlen(p + i) + 1)
    if (strcmp(p + i, want) == 0) return 1;
  return 0;
}

int virtio_find(uint32_t device_id, unsigned nth, struct virtio_dev *dev) {
  struct fdt f;
  if (!xen_platform.fdt || fdt_open(&f, xen_platform.fdt, xen_platform.fdt_size) < 0) return -XEN_ENODEV;
  int root = fdt_root(&f);
  for (int n = fdt_first_subnode(&f, root); n >= 0; n = fdt_next_subnode(&f, n)) {
    if (!has_compat(&f, n, "virtio,mmio")) continue;
    uint64_t base, size;
    uint32_t port;
    if (fdt_get_reg(&f, root, n, 0, &base, &size) < 0 || base >> 32 || size < 0x100) continue;
    if (fdt_get_u32(&f, n, "interrupts", &port) < 0) continue;
    memset(dev, 0, sizeof *dev);
    dev->base = (uint32_t)base;
    dev->port = port;
    int len;
    const uint8_t *iommus = fdt_get_prop(&f, n, "iommus", &len);
    if (iommus && len == 8) {
      int iommu = fdt_node_by_phandle(&f, fdt_be32(iommus));
      if (iommu < 0 || !has_compat(&f, iommu, "xen,grant-dma")) continue;
      dev->grants = 1;
      dev->backend = fdt_be32(iommus + 4);
    }
    /* A probe reads the identity registers: each read is an ioreq to the backend. */
    if (rd(dev, R_MAGIC) != 0x74726976u || rd(dev, R_VERSION) != 2) continue;
    dev->device_id = rd(dev, R_DEVICE_ID);
    if (dev->device_id != device_id) continue;
    if (nth-- == 0) return 0;
  }
  return -XEN_ENODEV;
}

uint32_t virtio_status(struct virtio_dev *dev) { return rd(dev, R_STATUS); }
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off) { return rd(dev, R_CONFIG + off); }

int virtio_negotiate(struct virtio_dev *dev, uint32_t features_lo) {
  if (dev->grants && !gnttab_ready) {
    int rc = gnttab_init(GRANT_FRAMES);
    if (rc < 0) return rc;
    gnttab_ready = 1;
  }
  wr(dev, R_STATUS, 0);
  wr(dev, R_STATUS, S_ACK);
  wr(dev, R_STATUS, S_ACK | S_DRIVER);
  wr(dev, R_DEVICE_FEATURES_SEL, 1);
  uint32_t hi = rd(dev, R_DEVICE_FEATURES);
  wr(dev, R_DEVICE_FEATURES_SEL, 0);
  uint32_t lo = rd(dev, R_DEVICE_FEATURES);
  uint32_t want_hi = VIRTIO_F_VERSION_1_HI | (dev->grants ? VIRTIO_F_ACCESS_PLATFORM_HI : 0);
  if ((hi & want_hi) != want_hi || (lo & features_lo) != features_lo) return -XEN_ENODEV;
  wr(dev, R_DRIVER_FEATURES_SEL, 1);
  wr(dev, R_DRIVER_FEATURES, want_hi);
  wr(dev, R_DRIVER_FEATURES_SEL, 0);
  wr(dev, R_DRIVER_FEATURES, features_lo);
  wr(dev, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  if (!(rd(dev, R_STATUS) & S_FEATURES_OK)) return -XEN_ENODEV;
  return 0;
}

/* Grants [addr, addr+len) page by page with consecutive refs; returns the grant-DMA address. */
static uint64_t dma_map_refs(struct virtio_dev *dev, const void *addr, uint32_t len, int readonly, grant_ref_t *first,
                             unsigned *count, grant_ref_t *next, grant_ref_t lo, grant_ref_t hi) {
  uint32_t a = (uint32_t)(uintptr_t)addr;
  if (!dev->grants) {
    *count = 0;
    return a;
  }
  unsigned pages = ((a & 0xfff) + len + 0xfff) >> 12;
  if (pages == 0) pages = 1;
  if (*next + pages > hi) *next = lo;
  *first = *next;
  *count = pages;
  for (unsigned i = 0; i < pages; i++)
    gnttab_grant_access(*next + i, (domid_t)dev->backend, (a >> 12) + i, readonly);
  *next += pages;
  return (1ull << 63) | ((uint64_t)*first << 12) | (a & 0xfff);
}

static uint64_t dma_map(struct virtio_dev *dev, const void *addr, uint32_t len, int readonly, grant_ref_t *first,
                        unsigned *count) {
  return dma_map_refs(dev, addr, len, readonly, first, count, &next_ref, FIRST_REF,
                      GRANT_FRAMES * GNTTAB_ENTRIES_PER_FRAME);
}

static int dma_unmap(grant_ref_t first, unsigned count) {
  int bad = 0;
  for (unsigned i = 0; i < count; i++)
    if (gnttab_end_access(first + i) < 0) bad = -XEN_EBUSY;
  return bad;
}

int virtio_queue_setup(struct virtio_dev *dev, unsigned index, unsigned size) {
  if (index >= 2) return -XEN_EINVAL;
  struct virtq *q = &dev->queues[index];
  wr(dev, R_QUEUE_SEL, index);
  if (rd(dev, R_QUEUE_READY) != 0) return -XEN_EBUSY;
  uint32_t max = rd(dev, R_QUEUE_NUM_MAX);
  if (max == 0) return -XEN_ENOENT;
  if (size > max) size = max;
  if (size > VIRTQ_MAX) size = VIRTQ_MAX;
  q->index = index;
  q->size = size;
  q->desc = aligned_alloc(4096, 4096);
  q->avail = aligned_alloc(4096, 4096);
  q->used = aligned_alloc(4096, 4096);
  if (!q->desc || !q->avail || !q->used) return -XEN_ENOMEM;
  memset((void *)q->desc, 0, 4096);
  memset((void *)q->avail, 0, 4096);
  memset((void *)q->used, 0, 4096);
  q->avail_idx = 0;
  q->last_used = 0;
  grant_ref_t ref;
  unsigned n;
  /* Rings stay granted for the device's life (coherent allocations in Linux's terms). */
  if (next_ring_ref + 3 > FIRST_REF) return -XEN_ENOSPC;
  uint64_t d = dma_map_refs(dev, (void *)q->desc, 4096, 1, &ref, &n, &next_ring_ref, RING_REF, FIRST_REF);
  uint64_t a = dma_map_refs(dev, (void *)q->avail, 4096, 1, &ref, &n, &next_ring_ref, RING_REF, FIRST_REF);
  uint64_t u = dma_map_refs(dev, (void *)q->used, 4096, 0, &ref, &n, &next_ring_ref, RING_REF, FIRST_REF);
  wr(dev, R_QUEUE_NUM, size);
  wr(dev, R_QUEUE_DESC_LOW, (uint32_t)d);
  wr(dev, R_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
  wr(dev, R_QUEUE_DRIVER_LOW, (uint32_t)a);
  wr(dev, R_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
  wr(dev, R_QUEUE_DEVICE_LOW, (uint32_t)u);
  wr(dev, R_QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
  wr(dev, R_QUEUE_READY, 1);
  return 0;
}

static void on_irq(evtchn_port_t port, void *arg) {
  (void)port;
  struct virtio_dev *dev = arg;
  dev->irqs++;
}

int virtio_driver_ok(struct virtio_dev *dev) {
  int rc = evtchn_bind_handler(dev->port, on_irq, dev);
  if (rc < 0) return rc;
  wr(dev, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  return 0;
}

long virtio_request(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n) {
  if (queue >= 2 || n == 0 || n > 4) return -XEN_EINVAL;
  struct virtq *q = &dev->queues[queue];
  if (q->size == 0 || n > q->size) return -XEN_EINVAL;
  grant_ref_t refs[4];
  unsigned counts[4];
  for (unsigned i = 0; i < n; i++) {
    uint64_t dma = dma_map(dev, bufs[i].addr, bufs[i].len, !bufs[i].device_writes, &refs[i], &counts[i]);
    q->desc[i].addr = dma;
    q->desc[i].len = bufs[i].len;
    q->desc[i].flags = (uint16_t)((bufs[i].device_writes ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
    q->desc[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
  }
  q->avail[2 + (q->avail_idx % q->size)] = 0; /* head descriptor 0 */
  __sync_synchronize();
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
  __sync_synchronize();
  wr(dev, R_QUEUE_NOTIFY, queue); /* posted: the vCPU does not wait for the backend */
  for (;;) {
    uint32_t seen = dev->irqs;
    __sync_synchronize();
    uint16_t used_idx = (uint16_t)(q->used[0] >> 16);
    if (used_idx != q->last_used) break;
    if (rd(dev, R_STATUS) & 0x40) return -XEN_EIO;
    wait_for_change(&dev->irqs, seen);
    uint32_t isr = rd(dev, R_INTERRUPT_STATUS);
    if (isr) wr(dev, R_INTERRUPT_ACK, isr);
  }
  __sync_synchronize();
  unsigned slot = q->last_used % q->size;
  uint32_t len = q->used[1 + 2 * slot + 1];
  q->last_used++;
  int bad = 0;
  for (unsigned i = 0; i < n; i++)
    if (dev->grants && dma_unmap(refs[i], counts[i]) < 0) bad = 1;
  if (bad) return -XEN_EBUSY; /* the backend kept a buffer mapped: Linux marks the device broken */
  return (long)len;
}
