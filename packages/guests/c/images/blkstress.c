/*
 * blkstress: writes patterned blocks to a virtio-blk disk, flushes, reads them back and verifies
 * them, round after round. The backend runs in a driver domain and reaches only the pages this
 * guest grants it for each request.
 *
 *   bootargs: rounds=<n, default 2; 0 = until stopped> blocks=<4 KiB blocks per round, default 16>
 *             pause=<ms between rounds, default 0: a run that must last whatever the I/O speed,
 *             e.g. long enough to be saved or migrated mid-way>
 *             event_idx=0 indirect_desc=0|2 virtio_poll=1 (the frontend's switches, include/virtio.h)
 *
 * Benchmark mode (pnpm bench blk): mode=seqread|seqwrite|randread|randwrite depth=<requests in
 * flight, 1..32> size=<bytes per request, a multiple of 4096, depth * size <= 1 MiB>
 * total=<KiB moved, default 4096> runs that pattern over the disk instead of the rounds and prints
 * "blkstress: bench MODE depth D size S requests N us T errors E".
 *
 * Prints "blkstress: disk N sectors, id ID", one "blkstress: round R wrote W verified V errors E"
 * line per round, then "blkstress: device reset N times" if its backend was lost and recovered
 * (include/virtio.h), "blkstress: done R rounds, E errors", and powers off (crashes on errors).
 */
#include <stdio.h>
#include <string.h>

#include "timer.h"
#include "virtio.h"
#include "virtio_blk.h"
#include "xenon.h"

#define BLOCK 4096u

static struct blk_hdr hdr __attribute__((aligned(4096)));
static uint8_t status __attribute__((aligned(4096)));
static uint32_t data[BLOCK / 4] __attribute__((aligned(4096)));
static struct virtio_dev dev;

/* Benchmark buffers: one header, status byte and data slot per request in flight. */
#define BENCH_MAX_DEPTH 32
#define BENCH_BUF (1u << 20)
static struct blk_hdr bhdr[BENCH_MAX_DEPTH] __attribute__((aligned(4096)));
static uint8_t bstatus[BENCH_MAX_DEPTH] __attribute__((aligned(4096)));
static uint8_t bbuf[BENCH_BUF] __attribute__((aligned(4096)));

static uint32_t pattern(uint32_t round, uint32_t block, uint32_t i) {
  return (round * 0x9e3779b9u) ^ (block * 0x85ebca6bu) ^ (i * 0xc2b2ae35u) ^ 0x5bd1e995u;
}

/* One request; returns the status byte, or 0xff + an error printed. */
static int blk(uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes) {
  long rc = virtio_blk_request(&dev, &hdr, &status, type, sector, buf, len, device_writes);
  if (rc < 0) {
    printf("blkstress: request type %u failed (%ld, device status %#x)\n", (unsigned)type, rc,
           (unsigned)virtio_status(&dev));
    return 0xff;
  }
  return (int)rc;
}

static volatile uint32_t ticks;
static void on_timer(evtchn_port_t port, void *arg) {
  (void)port;
  (void)arg;
  ticks++;
}

/* Sleeps `ms` on a one-shot timer (the vCPU blocks: no spinning). */
static void pause_ms(uint32_t ms) {
  uint64_t until = timer_now_ns() + (uint64_t)ms * 1000000u;
  while (timer_now_ns() < until) {
    uint32_t seen = ticks;
    timer_set_singleshot(0, until, 0);
    if (timer_now_ns() >= until) break;
    wait_for_change(&ticks, seen);
  }
}

static uint32_t xorshift(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Keeps `depth` requests in flight until `total` bytes moved; times it with the guest's clock. */
static int bench(const char *mode, uint32_t capacity) {
  int write = strcmp(mode, "seqwrite") == 0 || strcmp(mode, "randwrite") == 0;
  int seq = strncmp(mode, "seq", 3) == 0;
  if (!write && strcmp(mode, "seqread") != 0 && strcmp(mode, "randread") != 0) {
    printf("blkstress: FAILED unknown bench mode %s\n", mode);
    return 1;
  }
  uint32_t depth = bootarg_u32("depth", 1), size = bootarg_u32("size", 4096);
  uint32_t total = bootarg_u32("total", 4096) * 1024u;
  if (depth < 1 || depth > BENCH_MAX_DEPTH || depth > dev.queues[0].size || size < 4096 || size % 4096 ||
      (uint64_t)depth * size > BENCH_BUF || (uint64_t)size / 512 > capacity) {
    printf("blkstress: FAILED bad bench depth %u size %u (queue %u)\n", (unsigned)depth, (unsigned)size,
           (unsigned)dev.queues[0].size);
    return 1;
  }
  uint32_t span = (uint32_t)((uint64_t)capacity * 512 / size); /* request slots on the disk */
  uint32_t n = total / size, submitted = 0, done = 0, inflight = 0, errors = 0, rnd = 0x12345678u;
  uint8_t slot_of[VIRTQ_MAX];
  uint32_t free_slots = depth >= 32 ? 0xffffffffu : (1u << depth) - 1;
  for (uint32_t i = 0; i < BENCH_BUF / 4; i++) ((uint32_t *)bbuf)[i] = i * 0x9e3779b9u;
  uint64_t t0 = timer_now_ns();
  while (done < n) {
    while (inflight < depth && submitted < n) {
      unsigned s = (unsigned)__builtin_ctz(free_slots);
      uint32_t at = seq ? submitted % span : xorshift(&rnd) % span;
      bhdr[s].type = write ? BLK_T_OUT : BLK_T_IN;
      bhdr[s].reserved = 0;
      bhdr[s].sector = (uint64_t)at * (size / 512);
      bstatus[s] = 0xff;
      struct virtio_buf b[3] = {{&bhdr[s], sizeof bhdr[s], 0}, {bbuf + s * size, size, !write}, {&bstatus[s], 1, 1}};
      int head = virtio_submit(&dev, 0, b, 3);
      if (head < 0) break; /* out of descriptors or refs: reap first */
      slot_of[head] = (uint8_t)s;
      free_slots &= ~(1u << s);
      inflight++;
      submitted++;
    }
    virtio_notify(&dev, 0);
    uint16_t head;
    long rc = virtio_wait_used(&dev, 0, &head);
    while (rc >= 0) {
      unsigned s = slot_of[head];
      if (bstatus[s] != 0) errors++;
      free_slots |= 1u << s;
      inflight--;
      done++;
      rc = virtio_get_used(&dev, 0, &head);
    }
    if (rc != -XEN_EAGAIN) {
      printf("blkstress: FAILED bench request (%ld)\n", rc);
      return 1;
    }
  }
  uint64_t us = (timer_now_ns() - t0) / 1000;
  printf("blkstress: bench %s depth %u size %u requests %u us %u errors %u\n", mode, (unsigned)depth, (unsigned)size,
         (unsigned)n, (unsigned)us, (unsigned)errors);
  return errors ? 1 : 0;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t rounds = bootarg_u32("rounds", 2);
  uint32_t blocks = bootarg_u32("blocks", 16);
  int rc = events_init(vcpu_id);
  if (rc < 0 || (rc = virtio_find(VIRTIO_ID_BLOCK, 0, &dev)) < 0) {
    printf("blkstress: FAILED no virtio-blk device (%d)\n", rc);
    return 1;
  }
  if ((rc = virtio_negotiate(&dev, 0, 0)) < 0 || (rc = virtio_queue_setup(&dev, 0, bootarg_has("mode") ? VIRTQ_MAX : 8)) < 0 ||
      (rc = virtio_driver_ok(&dev)) < 0) {
    printf("blkstress: FAILED device setup (%d)\n", rc);
    return 1;
  }
  irq_enable();
  uint32_t capacity = virtio_config32(&dev, 0);
  char id[21];
  memset(data, 0, 20);
  if (blk(BLK_T_GET_ID, 0, data, 20, 1) != 0) return 1;
  memcpy(id, data, 20);
  id[20] = 0;
  printf("blkstress: disk %u sectors, id %s, backend d%u grants %d\n", (unsigned)capacity, id,
         (unsigned)dev.backend, dev.grants);
  printf("blkstress: event_idx %d indirect %d poll %d\n", dev.event_idx, dev.indirect, dev.poll);
  const char *mode = bootarg_str("mode", 0);
  if (mode) return bench(mode, capacity);
  if ((uint64_t)blocks * (BLOCK / 512) > capacity) blocks = capacity / (BLOCK / 512);
  uint32_t pause = bootarg_u32("pause", 0);
  if (pause && timer_bind_virq(0, on_timer, 0, 0) < 0) {
    printf("blkstress: FAILED no timer\n");
    return 1;
  }
  uint32_t errors = 0;
  uint32_t r;
  for (r = 0; rounds == 0 || r < rounds; r++) {
    if (pause && r > 0) pause_ms(pause);
    uint32_t wrote = 0, verified = 0;
    for (uint32_t b = 0; b < blocks; b++) {
      for (unsigned i = 0; i < BLOCK / 4; i++) data[i] = pattern(r, b, i);
      if (blk(BLK_T_OUT, (uint64_t)b * (BLOCK / 512), data, BLOCK, 0) == 0) wrote++;
      else errors++;
    }
    if (blk(BLK_T_FLUSH, 0, 0, 0, 0) != 0) errors++;
    for (uint32_t b = 0; b < blocks; b++) {
      memset(data, 0, BLOCK);
      if (blk(BLK_T_IN, (uint64_t)b * (BLOCK / 512), data, BLOCK, 1) != 0) {
        errors++;
        continue;
      }
      unsigned bad = 0;
      for (unsigned i = 0; i < BLOCK / 4; i++) bad += data[i] != pattern(r, b, i);
      if (bad) errors++;
      else verified++;
    }
    printf("blkstress: round %u wrote %u verified %u errors %u\n", (unsigned)r, (unsigned)wrote,
           (unsigned)verified, (unsigned)errors);
  }
  if (dev.resets) printf("blkstress: device reset %u times\n", (unsigned)dev.resets);
  printf("blkstress: done %u rounds, %u errors\n", (unsigned)r, (unsigned)errors);
  printf("blkstress: kicks %u skipped %u interrupts %u grant leaks %u\n", (unsigned)dev.queues[0].kicks,
         (unsigned)dev.queues[0].kicks_skipped, (unsigned)dev.irqs, (unsigned)dev.grant_leaks);
  return errors ? 1 : 0;
}
