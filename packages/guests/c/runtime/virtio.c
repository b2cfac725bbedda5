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
#include "xenon.h"

/* What a register reads while no backend serves the window (the bus reads all-ones). */
#define STATUS_GONE 0xffffffffu
/* Recoveries in a row before a lost device is given up. */
#define MAX_RECOVERY_TRIES 64

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


/*
 * Grant refs (one grant frame): 16..511 handed out as consecutive runs, first fit, from a bitmap;
 * refs below 16 are reserved or the runtime's. Rings keep theirs for the device's life, requests
 * until their used element comes back. A ref the backend still holds when we end it stays
 * allocated for good (never handed out again while someone may use it).
 */
#define FIRST_REF 16
#define GRANT_FRAMES 1
#define NR_REFS (GRANT_FRAMES * GNTTAB_ENTRIES_PER_FRAME)
static uint32_t ref_used[NR_REFS / 32];
static int gnttab_ready;

static int ref_busy(unsigned r) { return (ref_used[r >> 5] >> (r & 31)) & 1; }
static void ref_mark(unsigned r, int on) {
  if (on) ref_used[r >> 5] |= 1u << (r & 31);
  else ref_used[r >> 5] &= ~(1u << (r & 31));
}

/* First run of `n` free refs, marked used; 0 when there is none. */
static grant_ref_t ref_alloc(unsigned n) {
  for (unsigned start = FIRST_REF; start + n <= NR_REFS; start++) {
    unsigned i = 0;
    while (i < n && !ref_busy(start + i)) i++;
    if (i == n) {
      for (i = 0; i < n; i++) ref_mark(start + i, 1);
      return start;
    }
    start += i;
  }
  return 0;
}

static inline uint32_t rd(struct virtio_dev *d, unsigned off) { return *(volatile uint32_t *)(uintptr_t)(d->base + off); }
static inline void wr(struct virtio_dev *d, unsigned off, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(d->base + off) = v; }

uint32_t virtio_reg_read(struct virtio_dev *dev, unsigned off) { return rd(dev, off); }
void virtio_reg_write(struct virtio_dev *dev, unsigned off, uint32_t v) { wr(dev, off, v); }

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
uint32_t virtio_ack_interrupt(struct virtio_dev *dev) {
  uint32_t isr = rd(dev, R_INTERRUPT_STATUS);
  if (isr && isr != STATUS_GONE) wr(dev, R_INTERRUPT_ACK, isr);
  return isr;
}
uint32_t virtio_config32(struct virtio_dev *dev, unsigned off) { return rd(dev, R_CONFIG + off); }
uint16_t virtio_config16(struct virtio_dev *dev, unsigned off) {
  return *(volatile uint16_t *)(uintptr_t)(dev->base + R_CONFIG + off);
}
void virtio_config_write8(struct virtio_dev *dev, unsigned off, uint8_t v) {
  *(volatile uint8_t *)(uintptr_t)(dev->base + R_CONFIG + off) = v;
}

uint64_t virtio_dma_map(struct virtio_dev *dev, const void *addr, uint32_t len, int readonly, grant_ref_t *first,
                        unsigned *count) {
  uint32_t a = (uint32_t)(uintptr_t)addr;
  *first = 0;
  *count = 0;
  if (!dev->grants) return a;
  unsigned pages = ((a & 0xfff) + len + 0xfff) >> 12;
  if (pages == 0) pages = 1;
  grant_ref_t ref = ref_alloc(pages);
  if (ref == 0) return 0;
  for (unsigned i = 0; i < pages; i++) gnttab_grant_access(ref + i, (domid_t)dev->backend, (a >> 12) + i, readonly);
  *first = ref;
  *count = pages;
  return (1ull << 63) | ((uint64_t)ref << 12) | (a & 0xfff);
}

int virtio_dma_unmap(struct virtio_dev *dev, grant_ref_t first, unsigned count) {
  int bad = 0;
  for (unsigned i = 0; i < count; i++) {
    if (gnttab_end_access(first + i) < 0) {
      bad = -XEN_EBUSY;
      dev->grant_leaks++;
      continue; /* the backend still holds it: the ref stays allocated */
    }
    ref_mark(first + i, 0);
  }
  return bad;
}

/* Ends a grant the backend may be releasing right now (after a reset): a few tries. */
static int end_ring_grant(struct virtio_dev *dev, grant_ref_t ref) {
  for (int tries = 0; tries < 1000; tries++) {
    if (gnttab_end_access(ref) == 0) {
      ref_mark(ref, 0);
      return 0;
    }
    (void)rd(dev, R_STATUS); /* a round trip to the backend */
    xen_yield();
  }
  dev->grant_leaks++;
  return -XEN_EBUSY;
}

void virtio_reset(struct virtio_dev *dev) {
  wr(dev, R_STATUS, 0);
  (void)rd(dev, R_STATUS); /* the reset is done once this read is answered */
  for (unsigned qi = 0; qi < VIRTIO_MAX_QUEUES; qi++) {
    struct virtq *q = &dev->queues[qi];
    if (q->size == 0) continue;
    int kept = 0;
    for (unsigned h = 0; h < VIRTQ_MAX; h++) {
      struct virtq_req *r = &q->req[h];
      if (!r->busy) continue;
      for (unsigned b = 0; b < r->nbufs; b++)
        for (unsigned i = 0; i < r->count[b]; i++)
          if (dev->grants && end_ring_grant(dev, r->ref[b] + i) < 0) kept = 1;
    }
    for (unsigned i = 0; i < 4; i++)
      if (dev->grants && q->ring_ref[i] && end_ring_grant(dev, q->ring_ref[i]) < 0) kept = 1;
    if (!kept) {
      /* Nobody can reach the ring pages any more: they are ours again. */
      free((void *)q->desc);
      free((void *)q->avail);
      free((void *)q->used);
      free((void *)q->indirect);
    }
    memset(q, 0, sizeof *q);
  }
}

int virtio_negotiate(struct virtio_dev *dev, uint32_t features_lo, uint32_t optional_lo) {
  if (dev->grants && !gnttab_ready) {
    int rc = gnttab_init(GRANT_FRAMES);
    if (rc < 0) return rc;
    gnttab_ready = 1;
  }
  virtio_reset(dev);
  dev->asked_lo = features_lo;
  dev->optional_lo = optional_lo;
  dev->event_idx = dev->indirect = 0;
  dev->poll = bootarg_u32("virtio_poll", 0) != 0;
  wr(dev, R_STATUS, VIRTIO_S_ACKNOWLEDGE);
  wr(dev, R_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
  wr(dev, R_DEVICE_FEATURES_SEL, 1);
  uint32_t hi = rd(dev, R_DEVICE_FEATURES);
  wr(dev, R_DEVICE_FEATURES_SEL, 0);
  uint32_t lo = rd(dev, R_DEVICE_FEATURES);
  uint32_t want_hi = VIRTIO_F_VERSION_1_HI | (dev->grants ? VIRTIO_F_ACCESS_PLATFORM_HI : 0);
  if ((hi & want_hi) != want_hi || (lo & features_lo) != features_lo) return -XEN_ENODEV;
  uint32_t want_lo = features_lo | (lo & optional_lo);
  if (bootarg_u32("event_idx", 1)) want_lo |= lo & VIRTIO_F_EVENT_IDX;
  if (bootarg_u32("indirect_desc", 1)) want_lo |= lo & VIRTIO_F_INDIRECT_DESC;
  dev->indirect_always = bootarg_u32("indirect_desc", 1) >= 2;
  wr(dev, R_DRIVER_FEATURES_SEL, 1);
  wr(dev, R_DRIVER_FEATURES, want_hi);
  wr(dev, R_DRIVER_FEATURES_SEL, 0);
  wr(dev, R_DRIVER_FEATURES, want_lo);
  wr(dev, R_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
  if (!(rd(dev, R_STATUS) & VIRTIO_S_FEATURES_OK)) return -XEN_ENODEV;
  dev->features_lo = want_lo;
  dev->event_idx = (want_lo & VIRTIO_F_EVENT_IDX) != 0;
  dev->indirect = (want_lo & VIRTIO_F_INDIRECT_DESC) != 0;
  return 0;
}

/* A zeroed page granted to the backend for the device's life (coherent memory in Linux's terms). */
static void *ring_page(struct virtio_dev *dev, int readonly, grant_ref_t *ref, uint64_t *dma) {
  void *p = aligned_alloc(4096, 4096);
  if (!p) return 0;
  memset(p, 0, 4096);
  unsigned n;
  *dma = virtio_dma_map(dev, p, 4096, readonly, ref, &n);
  if (dev->grants && n == 0) {
    free(p);
    return 0;
  }
  return p;
}

int virtio_queue_setup(struct virtio_dev *dev, unsigned index, unsigned size) {
  if (index >= VIRTIO_MAX_QUEUES) return -XEN_EINVAL;
  struct virtq *q = &dev->queues[index];
  wr(dev, R_QUEUE_SEL, index);
  if (rd(dev, R_QUEUE_READY) != 0) return -XEN_EBUSY;
  uint32_t max = rd(dev, R_QUEUE_NUM_MAX);
  if (max == 0) return -XEN_ENOENT;
  if (size > max) size = max;
  if (size > VIRTQ_MAX) size = VIRTQ_MAX;
  memset(q, 0, sizeof *q);
  q->index = index;
  uint64_t d, a, u;
  q->desc = ring_page(dev, 1, &q->ring_ref[0], &d);
  q->avail = ring_page(dev, 1, &q->ring_ref[1], &a);
  q->used = ring_page(dev, 0, &q->ring_ref[2], &u);
  if (dev->indirect) q->indirect = ring_page(dev, 1, &q->ring_ref[3], &q->indirect_dma);
  if (!q->desc || !q->avail || !q->used || (dev->indirect && !q->indirect)) return -XEN_ENOMEM;
  q->size = size;
  for (unsigned i = 0; i < size; i++) q->next_free[i] = (uint16_t)(i + 1);
  q->free_head = 0;
  q->num_free = (uint16_t)size;
  /*
   * EVENT_IDX: interrupt for the first used element. A polling driver asks for none from the
   * start (used_event just behind last_used, and NO_INTERRUPT without EVENT_IDX): set only at
   * the first wait, a fast first completion could still interrupt.
   */
  q->avail[2 + size] = dev->poll ? (uint16_t)0xffff : 0;
  if (dev->poll) q->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
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
  if (!dev->bound) {
    int rc = evtchn_bind_handler(dev->port, on_irq, dev);
    if (rc < 0) return rc;
    dev->bound = 1;
  }
  wr(dev, R_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
  return 0;
}

static uint16_t desc_alloc(struct virtq *q) {
  uint16_t d = q->free_head;
  q->free_head = q->next_free[d];
  q->num_free--;
  return d;
}

int virtio_submit(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n) {
  if (queue >= VIRTIO_MAX_QUEUES || n == 0 || n > VIRTQ_MAX_BUFS) return -XEN_EINVAL;
  struct virtq *q = &dev->queues[queue];
  if (q->size == 0) return -XEN_EINVAL;
  /* Direct descriptors while the ring has room: they cost the backend no extra grant map. */
  int indirect = dev->indirect && n > 1 && (dev->indirect_always || q->num_free < n);
  unsigned need = indirect ? 1 : n;
  if (q->num_free < need) return -XEN_ENOSPC;
  uint64_t dma[VIRTQ_MAX_BUFS];
  grant_ref_t refs[VIRTQ_MAX_BUFS];
  unsigned counts[VIRTQ_MAX_BUFS];
  for (unsigned i = 0; i < n; i++) {
    dma[i] = virtio_dma_map(dev, bufs[i].addr, bufs[i].len, !bufs[i].device_writes, &refs[i], &counts[i]);
    if (dev->grants && counts[i] == 0) {
      for (unsigned j = 0; j < i; j++) virtio_dma_unmap(dev, refs[j], counts[j]);
      return -XEN_ENOSPC;
    }
  }
  uint16_t head = desc_alloc(q);
  struct virtq_req *r = &q->req[head];
  r->busy = 1;
  r->nbufs = (uint8_t)n;
  r->ndesc = (uint8_t)need;
  for (unsigned i = 0; i < n; i++) {
    r->ref[i] = refs[i];
    r->count[i] = (uint16_t)counts[i];
  }
  if (indirect) {
    /* The table of head h sits at entry h * VIRTQ_MAX_BUFS of the queue's indirect page. */
    volatile struct virtq_desc *t = q->indirect + head * VIRTQ_MAX_BUFS;
    for (unsigned i = 0; i < n; i++) {
      t[i].addr = dma[i];
      t[i].len = bufs[i].len;
      t[i].flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
      t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
    }
    q->desc[head].addr = q->indirect_dma + (uint64_t)head * VIRTQ_MAX_BUFS * sizeof(struct virtq_desc);
    q->desc[head].len = n * sizeof(struct virtq_desc);
    q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
    q->desc[head].next = 0;
  } else {
    uint16_t d = head;
    for (unsigned i = 0; i < n; i++) {
      uint16_t next = i + 1 < n ? desc_alloc(q) : 0;
      q->desc[d].addr = dma[i];
      q->desc[d].len = bufs[i].len;
      q->desc[d].flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
      q->desc[d].next = next;
      d = next;
    }
  }
  q->avail[2 + (q->avail_idx % q->size)] = head;
  __sync_synchronize(); /* descriptors and the slot before the index */
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
  return head;
}

void virtio_notify(struct virtio_dev *dev, unsigned queue) {
  struct virtq *q = &dev->queues[queue];
  __sync_synchronize(); /* avail.idx before reading the device's wish */
  uint16_t now = q->avail_idx, old = q->kicked_idx;
  q->kicked_idx = now;
  int need;
  if (dev->event_idx) {
    uint16_t event = ((volatile uint16_t *)q->used)[2 + 4 * q->size];
    need = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
  } else {
    need = !(q->used[0] & VIRTQ_USED_F_NO_NOTIFY);
  }
  if (!need) {
    q->kicks_skipped++;
    return;
  }
  q->kicks++;
  wr(dev, R_QUEUE_NOTIFY, queue); /* posted: the vCPU does not wait for the backend */
}

long virtio_get_used(struct virtio_dev *dev, unsigned queue, uint16_t *head) {
  struct virtq *q = &dev->queues[queue];
  uint16_t used_idx = (uint16_t)(q->used[0] >> 16);
  if (used_idx == q->last_used) return -XEN_EAGAIN;
  __sync_synchronize(); /* the element after the index */
  unsigned slot = q->last_used % q->size;
  uint32_t id = q->used[1 + 2 * slot];
  uint32_t len = q->used[1 + 2 * slot + 1];
  q->last_used++;
  if (id >= q->size || !q->req[id].busy) return -XEN_EIO; /* a device bug: not ours */
  struct virtq_req *r = &q->req[id];
  int bad = 0;
  for (unsigned i = 0; i < r->nbufs; i++)
    if (dev->grants && virtio_dma_unmap(dev, r->ref[i], r->count[i]) < 0) bad = 1;
  /* Give the chain's descriptors back (the device never writes the table: our copy is good). */
  uint16_t d = (uint16_t)id;
  for (unsigned i = 0; i < r->ndesc; i++) {
    uint16_t next = q->desc[d].next;
    q->next_free[d] = q->free_head;
    q->free_head = d;
    q->num_free++;
    d = next;
  }
  r->busy = 0;
  *head = (uint16_t)id;
  if (bad) return -XEN_EBUSY; /* the backend kept a buffer mapped: Linux marks the device broken */
  return (long)len;
}

long virtio_wait_used(struct virtio_dev *dev, unsigned queue, uint16_t *head) {
  struct virtq *q = &dev->queues[queue];
  int woke = 0;
  for (;;) {
    uint32_t seen = dev->irqs;
    if (dev->poll) {
      /* used_event just behind last_used is reached only after 65535 more: no interrupts. */
      if (dev->event_idx) q->avail[2 + q->size] = (uint16_t)(q->last_used - 1);
      else q->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
    } else if (dev->event_idx) {
      q->avail[2 + q->size] = q->last_used; /* interrupt me for the next used element */
    }
    __sync_synchronize();
    long rc = virtio_get_used(dev, queue, head);
    if (rc != -XEN_EAGAIN) return rc;
    /*
     * Register reads are round trips to the backend, so the common path has none. Woken with
     * nothing used, the interrupt was for something else (a config change: the device broke or
     * its backend was restarted): acknowledge it and look at the status. A config interrupt that
     * came together with a used one, and so was not looked at, is raised again by the device
     * until acknowledged (the line is a level, the event channel an edge). Polling has no
     * interrupts: it looks at the status each time round.
     */
    if (woke || dev->poll) {
      if (woke) virtio_ack_interrupt(dev);
      uint32_t st = rd(dev, R_STATUS);
      if (st == STATUS_GONE || st == VIRTIO_S_NEEDS_RESET) return -XEN_ENODEV;
      if (st & VIRTIO_S_NEEDS_RESET) return -XEN_EIO;
    }
    if (dev->poll) {
      xen_yield();
      continue;
    }
    wait_for_change(&dev->irqs, seen);
    woke = 1;
  }
}

int virtio_recover(struct virtio_dev *dev) {
  unsigned sizes[VIRTIO_MAX_QUEUES];
  for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) sizes[i] = dev->queues[i].size;
  for (unsigned tries = 0; tries < MAX_RECOVERY_TRIES; tries++) {
    for (;;) {
      uint32_t seen = dev->irqs;
      __sync_synchronize();
      if (rd(dev, R_STATUS) != STATUS_GONE) break;
      if (dev->poll) xen_yield();
      else wait_for_change(&dev->irqs, seen);
    }
    int rc = virtio_negotiate(dev, dev->asked_lo, dev->optional_lo);
    for (unsigned i = 0; rc == 0 && i < VIRTIO_MAX_QUEUES; i++)
      if (sizes[i]) rc = virtio_queue_setup(dev, i, sizes[i]);
    if (rc == 0) rc = virtio_driver_ok(dev);
    uint32_t st = rd(dev, R_STATUS);
    if (rc == 0 && st != STATUS_GONE && !(st & VIRTIO_S_NEEDS_RESET)) {
      dev->resets++;
      return 0;
    }
    if (st != STATUS_GONE && st != VIRTIO_S_NEEDS_RESET && rc < 0) return rc; /* not lost: a real refusal */
  }
  return -XEN_EIO;
}

long virtio_request(struct virtio_dev *dev, unsigned queue, const struct virtio_buf *bufs, unsigned n) {
  for (unsigned tries = 0; tries < MAX_RECOVERY_TRIES; tries++) {
    int head = virtio_submit(dev, queue, bufs, n);
    if (head < 0) return head;
    virtio_notify(dev, queue);
    long rc;
    for (;;) {
      uint16_t got;
      rc = virtio_wait_used(dev, queue, &got);
      if (rc == -XEN_EIO || rc == -XEN_ENODEV || got == (uint16_t)head) break;
    }
    if (rc != -XEN_ENODEV) return rc;
    int r = virtio_recover(dev);
    if (r < 0) return r;
  }
  return -XEN_EIO;
}
