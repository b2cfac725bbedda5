/*
 * virtioattack: a hostile virtio driver. On its virtio-console it breaks, one case after another,
 * each rule of the device's virtqueue checks (shared/reference/virtio.md §8), and after each case
 * checks that the device went to DEVICE_NEEDS_RESET, resets it, brings it up again and sends a
 * line through it: the device must be usable again.
 *
 *   bootargs: case=<name> runs one case only (default: all, in the order below)
 *
 * Through CONSOLEIO: "virtioattack: CASE: device needs reset" (or "virtioattack: CASE: FAILED ..."),
 * finally "virtioattack: done N cases, F failures" (crashes when F > 0). Through the device,
 * after each case: "attack CASE: recovered".
 *
 * The receiveq cases need host input waiting for the console (the device fills receive buffers
 * only when it has input): send at least two bytes before the run or during it. No case may
 * change the page its buffers point into: it is checked after each one.
 */
#include <stdio.h>
#include <string.h>

#include "virtio.h"
#include "xenon.h"

#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4

#define RXQ 0
#define TXQ 1
#define QSIZE 8
/* Refs this image hands out itself, far above the frontend's first-fit ones. */
#define STRAY_REF 500
#define UNGRANTED_REF 499

static struct virtio_dev dev;
static uint8_t data_page[4096] __attribute__((aligned(4096)));
static uint8_t tx_page[4096] __attribute__((aligned(4096)));
static struct virtq_desc table_page[256] __attribute__((aligned(4096)));
static uint8_t raw_ring[3][4096] __attribute__((aligned(4096)));
static uint64_t data_dma, table_dma, raw_dma[3];

static void wr(unsigned off, uint32_t v) { virtio_reg_write(&dev, off, v); }

/* Negotiates (INDIRECT_DESC on), sets up the receiveq and, unless told not to, the transmitq. */
static int up(int with_tx) {
  int rc = virtio_negotiate(&dev, 0, 0);
  if (rc == 0) rc = virtio_queue_setup(&dev, RXQ, QSIZE);
  if (rc == 0 && with_tx) rc = virtio_queue_setup(&dev, TXQ, QSIZE);
  if (rc == 0) rc = virtio_driver_ok(&dev);
  return rc;
}

/* Queue 1 set up by hand: size and ring addresses as given (the attack is in them). */
static int up_raw(uint32_t num, uint64_t d, uint64_t a, uint64_t u) {
  int rc = virtio_negotiate(&dev, 0, 0);
  if (rc == 0) rc = virtio_queue_setup(&dev, RXQ, QSIZE);
  if (rc < 0) return rc;
  wr(R_QUEUE_SEL, TXQ);
  wr(R_QUEUE_NUM, num);
  wr(R_QUEUE_DESC_LOW, (uint32_t)d);
  wr(R_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
  wr(R_QUEUE_DRIVER_LOW, (uint32_t)a);
  wr(R_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
  wr(R_QUEUE_DEVICE_LOW, (uint32_t)u);
  wr(R_QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
  wr(R_QUEUE_READY, 1);
  return virtio_driver_ok(&dev);
}

static void set_desc(unsigned qi, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  volatile struct virtq_desc *d = &dev.queues[qi].desc[i];
  d->addr = addr;
  d->len = len;
  d->flags = flags;
  d->next = next;
}

/* Publishes `head` in the avail ring and notifies (no EVENT_IDX courtesy: always). */
static void offer(unsigned qi, uint16_t head) {
  struct virtq *q = &dev.queues[qi];
  q->avail[2 + (q->avail_idx % q->size)] = head;
  __sync_synchronize();
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
  __sync_synchronize();
  wr(R_QUEUE_NOTIFY, qi);
}

static uint64_t ind(unsigned entry) { return table_dma + entry * sizeof(struct virtq_desc); }
static void set_ind(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  table_page[i].addr = addr;
  table_page[i].len = len;
  table_page[i].flags = flags;
  table_page[i].next = next;
}

/* ---- the cases: each leaves the device to find the broken rule ---- */

static void head_out_of_range(void) { offer(TXQ, QSIZE + 3); }
static void next_out_of_range(void) {
  set_desc(TXQ, 0, data_dma, 4, VIRTQ_DESC_F_NEXT, 200);
  offer(TXQ, 0);
}
static void chain_loop(void) {
  set_desc(TXQ, 0, data_dma, 4, VIRTQ_DESC_F_NEXT, 1);
  set_desc(TXQ, 1, data_dma, 4, VIRTQ_DESC_F_NEXT, 0);
  offer(TXQ, 0);
}
static void indirect_chain_loop(void) {
  /* A table of QSIZE entries, each pointing at the next, the last back to the first. */
  for (unsigned i = 0; i < QSIZE; i++) set_ind(i, data_dma, 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
  set_desc(TXQ, 0, ind(0), QSIZE * 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer(TXQ, 0);
}
static void nested_indirect(void) {
  set_ind(0, ind(8), 16, VIRTQ_DESC_F_INDIRECT, 0);
  set_desc(TXQ, 0, ind(0), 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer(TXQ, 0);
}
static void indirect_table_size(void) {
  set_ind(0, data_dma, 4, 0, 0);
  set_desc(TXQ, 0, ind(0), 24, VIRTQ_DESC_F_INDIRECT, 0);
  offer(TXQ, 0);
}
static void indirect_with_next(void) {
  set_ind(0, data_dma, 4, 0, 0);
  set_desc(TXQ, 0, ind(0), 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
  set_desc(TXQ, 1, data_dma, 4, 0, 0);
  offer(TXQ, 0);
}
static void buffer_beyond_grant(void) {
  /* One page granted as STRAY_REF; the buffer claims two pages, so STRAY_REF + 1 too. */
  gnttab_grant_access(STRAY_REF, (domid_t)dev.backend, (uint32_t)(uintptr_t)data_page >> 12, 1);
  set_desc(TXQ, 0, (1ull << 63) | ((uint64_t)STRAY_REF << 12), 8192, 0, 0);
  offer(TXQ, 0);
}
static void buffer_not_granted(void) {
  set_desc(TXQ, 0, (1ull << 63) | ((uint64_t)UNGRANTED_REF << 12), 16, 0, 0);
  offer(TXQ, 0);
}
static void receive_into_readonly_grant(void) {
  gnttab_grant_access(STRAY_REF, (domid_t)dev.backend, (uint32_t)(uintptr_t)data_page >> 12, 1);
  set_desc(RXQ, 0, (1ull << 63) | ((uint64_t)STRAY_REF << 12), 64, VIRTQ_DESC_F_WRITE, 0);
  offer(RXQ, 0);
}
static void receive_beyond_grant(void) {
  /* Writable this time, but the buffer starts at the page's last byte: input spills into
   * STRAY_REF + 1, which is not granted, so nothing may be written at all. */
  gnttab_grant_access(STRAY_REF, (domid_t)dev.backend, (uint32_t)(uintptr_t)data_page >> 12, 0);
  set_desc(RXQ, 0, (1ull << 63) | ((uint64_t)STRAY_REF << 12) | 4095, 64, VIRTQ_DESC_F_WRITE, 0);
  offer(RXQ, 0);
}
static void writable_in_transmitq(void) {
  set_desc(TXQ, 0, data_dma, 4, VIRTQ_DESC_F_WRITE, 0);
  offer(TXQ, 0);
}
static void readable_in_receiveq(void) {
  set_desc(RXQ, 0, data_dma, 4, 0, 0);
  offer(RXQ, 0);
}
static void readable_after_writable(void) {
  set_desc(TXQ, 0, data_dma, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  set_desc(TXQ, 1, data_dma, 4, 0, 0);
  offer(TXQ, 0);
}
static void unknown_flags(void) {
  set_desc(TXQ, 0, data_dma, 4, 0x8, 0);
  offer(TXQ, 0);
}
static void length_overflow(void) {
  set_desc(TXQ, 0, data_dma, 0x80000000u, VIRTQ_DESC_F_NEXT, 1);
  set_desc(TXQ, 1, data_dma, 0x80000000u, 0, 0);
  offer(TXQ, 0);
}
static void avail_index_jump(void) {
  struct virtq *q = &dev.queues[TXQ];
  q->avail[1] = (uint16_t)(q->avail_idx + QSIZE + 1);
  __sync_synchronize();
  wr(R_QUEUE_NOTIFY, TXQ);
}
static void notify_not_ready(void) { wr(R_QUEUE_NOTIFY, TXQ); }

struct attack {
  const char *name;
  int setup; /* 0: both queues; 1: receiveq only; 2..4: raw transmitq (size / ring / alignment) */
  void (*run)(void);
};

static const struct attack attacks[] = {
    {"head-out-of-range", 0, head_out_of_range},
    {"next-out-of-range", 0, next_out_of_range},
    {"chain-loop", 0, chain_loop},
    {"indirect-chain-loop", 0, indirect_chain_loop},
    {"nested-indirect", 0, nested_indirect},
    {"indirect-table-size", 0, indirect_table_size},
    {"indirect-with-next", 0, indirect_with_next},
    {"buffer-beyond-grant", 0, buffer_beyond_grant},
    {"buffer-not-granted", 0, buffer_not_granted},
    {"writable-in-transmitq", 0, writable_in_transmitq},
    {"readable-after-writable", 0, readable_after_writable},
    {"unknown-flags", 0, unknown_flags},
    {"length-overflow", 0, length_overflow},
    {"avail-index-jump", 0, avail_index_jump},
    {"queue-size-not-power-of-two", 2, 0},
    {"ring-not-granted", 3, 0},
    {"ring-misaligned", 4, 0},
    {"notify-queue-not-ready", 1, notify_not_ready},
    {"readable-in-receiveq", 0, readable_in_receiveq},
    {"receive-into-readonly-grant", 0, receive_into_readonly_grant},
    {"receive-beyond-grant", 0, receive_beyond_grant},
};
#define NATTACKS (sizeof attacks / sizeof attacks[0])

static int set_up(const struct attack *a) {
  switch (a->setup) {
    case 0:
      return up(1);
    case 1:
      return up(0);
    case 2:
      return up_raw(QSIZE - 2, raw_dma[0], raw_dma[1], raw_dma[2]);
    case 3:
      return up_raw(QSIZE, (1ull << 63) | ((uint64_t)UNGRANTED_REF << 12), raw_dma[1], raw_dma[2]);
    default:
      return up_raw(QSIZE, raw_dma[0] + 8, raw_dma[1], raw_dma[2]);
  }
}

/* Polls the status until NEEDS_RESET (each read is an ioreq, answered after the device's work). */
static int needs_reset(void) {
  for (unsigned i = 0; i < 20000; i++) {
    if (virtio_status(&dev) & VIRTIO_S_NEEDS_RESET) return 1;
    xen_yield();
  }
  return 0;
}

static int say(const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  memcpy(tx_page, s, n);
  struct virtio_buf b = {tx_page, n, 0};
  long rc = virtio_request(&dev, TXQ, &b, 1);
  return rc < 0 ? (int)rc : 0;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *only = bootarg_str("case", "");
  int rc = events_init(vcpu_id);
  if (rc < 0 || (rc = virtio_find(VIRTIO_ID_CONSOLE, 0, &dev)) < 0 || (rc = up(1)) < 0) {
    printf("virtioattack: FAILED device setup (%d)\n", rc);
    return 1;
  }
  irq_enable();
  /* Pages the cases point into, granted once for the whole run (read-only). */
  grant_ref_t ref;
  unsigned n;
  memset(data_page, 0x5a, sizeof data_page);
  data_dma = virtio_dma_map(&dev, data_page, 4096, 1, &ref, &n);
  table_dma = virtio_dma_map(&dev, table_page, 4096, 1, &ref, &n);
  for (int i = 0; i < 3; i++) raw_dma[i] = virtio_dma_map(&dev, raw_ring[i], 4096, i != 2 ? 1 : 0, &ref, &n);
  printf("virtioattack: device at %#x backend d%u grants %d indirect %d\n", (unsigned)dev.base,
         (unsigned)dev.backend, dev.grants, dev.indirect);
  unsigned cases = 0, failures = 0;
  for (unsigned i = 0; i < NATTACKS; i++) {
    const struct attack *a = &attacks[i];
    if (*only && strcmp(only, a->name) != 0) continue;
    cases++;
    if ((rc = set_up(a)) < 0) {
      printf("virtioattack: %s: FAILED set-up (%d)\n", a->name, rc);
      failures++;
      continue;
    }
    if (a->run) a->run();
    if (!needs_reset()) {
      printf("virtioattack: %s: FAILED no DEVICE_NEEDS_RESET (status %#x)\n", a->name, (unsigned)virtio_status(&dev));
      failures++;
    } else {
      printf("virtioattack: %s: device needs reset\n", a->name);
    }
    if (a->run == buffer_beyond_grant || a->run == receive_into_readonly_grant || a->run == receive_beyond_grant)
      gnttab_end_access(STRAY_REF);
    /* No case may change the guest's memory: the data page is only ever lent read-only or refused. */
    for (unsigned b = 0; b < sizeof data_page; b++)
      if (data_page[b] != 0x5a) {
        printf("virtioattack: %s: FAILED guest memory changed at byte %u\n", a->name, b);
        failures++;
        break;
      }
    char line[80];
    snprintf(line, sizeof line, "attack %s: recovered\n", a->name);
    if ((rc = up(1)) < 0 || (rc = say(line)) < 0) {
      printf("virtioattack: %s: FAILED after reset (%d, status %#x)\n", a->name, rc, (unsigned)virtio_status(&dev));
      failures++;
    }
  }
  printf("virtioattack: done %u cases, %u failures, grant leaks %u\n", cases, failures, (unsigned)dev.grant_leaks);
  return failures ? 1 : 0;
}
