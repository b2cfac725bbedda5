/*
 * blkstress: writes patterned blocks to a virtio-blk disk, flushes, reads them back and verifies
 * them, round after round. The backend runs in a driver domain and reaches only the pages this
 * guest grants it for each request.
 *
 *   bootargs: rounds=<n, default 2; 0 = until stopped> blocks=<4 KiB blocks per round, default 16>
 *             event_idx=0 indirect_desc=0 virtio_poll=1 (the frontend's switches, include/virtio.h)
 *
 * Prints "blkstress: disk N sectors, id ID", one "blkstress: round R wrote W verified V errors E"
 * line per round, then "blkstress: done R rounds, E errors" and powers off (crashes on errors).
 */
#include <stdio.h>
#include <string.h>

#include "virtio.h"
#include "xenon.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLOCK 4096u

struct blk_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

static struct blk_hdr hdr __attribute__((aligned(4096)));
static uint8_t status __attribute__((aligned(4096)));
static uint32_t data[BLOCK / 4] __attribute__((aligned(4096)));
static struct virtio_dev dev;

static uint32_t pattern(uint32_t round, uint32_t block, uint32_t i) {
  return (round * 0x9e3779b9u) ^ (block * 0x85ebca6bu) ^ (i * 0xc2b2ae35u) ^ 0x5bd1e995u;
}

/* One request; returns the status byte, or 0xff + an error printed. */
static int blk(uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xff;
  struct virtio_buf b[3] = {{&hdr, sizeof hdr, 0}, {buf, len, device_writes}, {&status, 1, 1}};
  struct virtio_buf s[2] = {{&hdr, sizeof hdr, 0}, {&status, 1, 1}};
  long rc = len ? virtio_request(&dev, 0, b, 3) : virtio_request(&dev, 0, s, 2);
  if (rc < 0) {
    printf("blkstress: request type %u failed (%ld, device status %#x)\n", (unsigned)type, rc,
           (unsigned)virtio_status(&dev));
    return 0xff;
  }
  return status;
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
  if ((rc = virtio_negotiate(&dev, 0, 0)) < 0 || (rc = virtio_queue_setup(&dev, 0, 8)) < 0 ||
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
  if ((uint64_t)blocks * (BLOCK / 512) > capacity) blocks = capacity / (BLOCK / 512);
  uint32_t errors = 0;
  uint32_t r;
  for (r = 0; rounds == 0 || r < rounds; r++) {
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
  printf("blkstress: done %u rounds, %u errors\n", (unsigned)r, (unsigned)errors);
  printf("blkstress: kicks %u skipped %u interrupts %u grant leaks %u\n", (unsigned)dev.queues[0].kicks,
         (unsigned)dev.queues[0].kicks_skipped, (unsigned)dev.irqs, (unsigned)dev.grant_leaks);
  return errors ? 1 : 0;
}
