/*
 * kvstore: a small key-value store kept on its virtio-blk disk and served over virtio-net, in the
 * frame protocol of netproto.h (GET, PUT, DEL, PING; STOP when started with stop=1).
 *
 *   bootargs: slots=<n> (64)  stop=0|1 (0)  verbose=0|1 (0)
 *
 * Disk layout (512-byte sectors): sector 0 holds "XKVS", version 1 and the slot count; sector
 * 1 + i holds slot i: used u8, klen u8, vlen u16, key[32], value[200]. A PUT or DEL is written
 * and flushed before its reply, so an answered write survives a restart with the same disk. A
 * disk without the header (or with another slot count) is formatted.
 *
 * Prints "kvstore: disk N sectors, mac M, K keys loaded" (or "formatted for S slots") and
 * "kvstore: stopped after R requests, K keys" when stopped.
 */
#include <stdio.h>
#include <string.h>

#include "netproto.h"
#include "virtio.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "xenon.h"

#define SECTOR 512u
#define SLOTS_MAX 256
#define KV_MAGIC 0x53564b58u /* "XKVS" */

struct slot {
  uint8_t used;
  uint8_t klen;
  uint16_t vlen;
  char key[XNP_KEY_MAX];
  uint8_t value[XNP_VALUE_MAX];
};

static struct blk_hdr hdr __attribute__((aligned(4096)));
static uint8_t status __attribute__((aligned(4096)));
static uint8_t sector_buf[SECTOR] __attribute__((aligned(4096)));
static struct virtio_dev disk;
static struct virtio_net net;
static struct slot slots[SLOTS_MAX];
static uint32_t nslots;
static uint8_t rxf[ETH_FRAME_MAX], txf[ETH_FRAME_MAX];

static int blk(uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes) {
  long rc = virtio_blk_request(&disk, &hdr, &status, type, sector, buf, len, device_writes);
  if (rc < 0) {
    printf("kvstore: disk request %u failed (%ld)\n", (unsigned)type, rc);
    return -1;
  }
  return rc == 0 ? 0 : -1;
}

/* Writes slot i to its sector and flushes. */
static int store_slot(uint32_t i) {
  memset(sector_buf, 0, SECTOR);
  memcpy(sector_buf, &slots[i], sizeof slots[i]);
  if (blk(BLK_T_OUT, 1 + i, sector_buf, SECTOR, 0) < 0) return -1;
  return blk(BLK_T_FLUSH, 0, 0, 0, 0);
}

static int load(uint32_t capacity, uint32_t want) {
  if (want > SLOTS_MAX) want = SLOTS_MAX;
  if (want + 1 > capacity) want = capacity - 1;
  if (blk(BLK_T_IN, 0, sector_buf, SECTOR, 1) < 0) return -1;
  uint32_t magic, version, count;
  memcpy(&magic, sector_buf, 4);
  memcpy(&version, sector_buf + 4, 4);
  memcpy(&count, sector_buf + 8, 4);
  nslots = want;
  if (magic == KV_MAGIC && version == 1 && count == want) {
    uint32_t keys = 0;
    for (uint32_t i = 0; i < nslots; i++) {
      if (blk(BLK_T_IN, 1 + i, sector_buf, SECTOR, 1) < 0) return -1;
      memcpy(&slots[i], sector_buf, sizeof slots[i]);
      if (slots[i].klen > XNP_KEY_MAX || slots[i].vlen > XNP_VALUE_MAX) slots[i].used = 0; /* torn: drop */
      keys += slots[i].used != 0;
    }
    return (int)keys;
  }
  memset(slots, 0, sizeof slots);
  for (uint32_t i = 0; i < nslots; i++)
    if (store_slot(i) < 0) return -1;
  memset(sector_buf, 0, SECTOR);
  magic = KV_MAGIC;
  version = 1;
  memcpy(sector_buf, &magic, 4);
  memcpy(sector_buf + 4, &version, 4);
  memcpy(sector_buf + 8, &nslots, 4);
  if (blk(BLK_T_OUT, 0, sector_buf, SECTOR, 0) < 0 || blk(BLK_T_FLUSH, 0, 0, 0, 0) < 0) return -1;
  printf("kvstore: formatted for %u slots\n", (unsigned)nslots);
  return 0;
}

static int find(const char *key, uint8_t klen) {
  for (uint32_t i = 0; i < nslots; i++)
    if (slots[i].used && slots[i].klen == klen && memcmp(slots[i].key, key, klen) == 0) return (int)i;
  return -1;
}

static uint32_t count_keys(void) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < nslots; i++) n += slots[i].used != 0;
  return n;
}

static void reply(const struct xnp_hdr *h, uint8_t st, const void *val, uint16_t vlen) {
  const uint8_t *from = rxf + ETH_ALEN;
  uint32_t off = xnp_build(txf, from, net.mac, h->op | XNP_REPLY, h->seq, st, h->klen, vlen);
  memcpy(txf + off, rxf + XNP_OFF, h->klen);
  memcpy(txf + off + h->klen, val, vlen);
  int rc = virtio_net_send(&net, txf, off + h->klen + vlen);
  if (rc < 0) printf("kvstore: reply failed (%d)\n", rc);
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  int stoppable = (int)bootarg_u32("stop", 0);
  int verbose = (int)bootarg_u32("verbose", 0);
  int rc = events_init(vcpu_id);
  if (rc < 0 || (rc = virtio_find(VIRTIO_ID_BLOCK, 0, &disk)) < 0) {
    printf("kvstore: FAILED no virtio-blk device (%d)\n", rc);
    return 1;
  }
  if ((rc = virtio_negotiate(&disk, 0, 0)) < 0 || (rc = virtio_queue_setup(&disk, 0, 8)) < 0 ||
      (rc = virtio_driver_ok(&disk)) < 0) {
    printf("kvstore: FAILED disk setup (%d)\n", rc);
    return 1;
  }
  irq_enable();
  uint32_t capacity = virtio_config32(&disk, 0);
  int keys = capacity >= 2 ? load(capacity, bootarg_u32("slots", 64)) : -1;
  if (keys < 0) {
    printf("kvstore: FAILED disk of %u sectors unusable\n", (unsigned)capacity);
    return 1;
  }
  if ((rc = virtio_net_open(&net, 0)) < 0) {
    printf("kvstore: FAILED no virtio-net device (%d)\n", rc);
    return 1;
  }
  printf("kvstore: disk %u sectors, mac " XNP_MAC_FMT ", %d keys loaded\n", (unsigned)capacity, XNP_MAC_ARGS(net.mac),
         keys);
  uint32_t requests = 0;
  struct xnp_hdr h;
  for (;;) {
    long len = virtio_net_recv(&net, rxf, sizeof rxf, 1000);
    if (len < 0) {
      printf("kvstore: FAILED receive (%ld)\n", len);
      return 1;
    }
    if (len == 0) continue;
    if (!xnp_parse(rxf, len, &h) || (h.op & XNP_REPLY)) continue; /* not for us: ignored */
    requests++;
    const char *key = (const char *)rxf + XNP_OFF;
    int i = find(key, h.klen);
    switch (h.op) {
      case XNP_PING:
        reply(&h, XNP_OK, 0, 0);
        break;
      case XNP_GET:
        if (i < 0) reply(&h, XNP_NOT_FOUND, 0, 0);
        else reply(&h, XNP_OK, slots[i].value, slots[i].vlen);
        break;
      case XNP_PUT: {
        if (h.klen == 0) {
          reply(&h, XNP_BAD_REQUEST, 0, 0);
          break;
        }
        if (i < 0)
          for (uint32_t j = 0; j < nslots && i < 0; j++)
            if (!slots[j].used) i = (int)j;
        if (i < 0) {
          reply(&h, XNP_NO_SPACE, 0, 0);
          break;
        }
        struct slot *s = &slots[i];
        s->used = 1;
        s->klen = h.klen;
        s->vlen = h.vlen;
        memcpy(s->key, key, h.klen);
        memcpy(s->value, key + h.klen, h.vlen);
        reply(&h, store_slot((uint32_t)i) < 0 ? XNP_IO_ERROR : XNP_OK, 0, 0);
        break;
      }
      case XNP_DEL:
        if (i < 0) reply(&h, XNP_NOT_FOUND, 0, 0);
        else {
          slots[i].used = 0;
          reply(&h, store_slot((uint32_t)i) < 0 ? XNP_IO_ERROR : XNP_OK, 0, 0);
        }
        break;
      case XNP_STOP:
        reply(&h, stoppable ? XNP_OK : XNP_REFUSED, 0, 0);
        if (stoppable) {
          virtio_net_flush(&net); /* the reply must be out before this domain goes */
          printf("kvstore: stopped after %u requests, %u keys\n", (unsigned)requests, (unsigned)count_keys());
          return 0;
        }
        break;
      default:
        reply(&h, XNP_BAD_REQUEST, 0, 0);
    }
    if (verbose) printf("kvstore: op %u seq %u key %.*s\n", (unsigned)h.op, (unsigned)h.seq, (int)h.klen, key);
  }
}
