/*
 * virtio-blk requests (VirtIO 1.2 §5.2.6) over the virtio-mmio frontend (virtio.h): a chain of
 * the request header (device-readable), the data buffer (device-writable for IN and GET_ID) and
 * the status byte (device-writable). Header and status must sit in pages the frontend can grant
 * (page-aligned statics, as the images keep them).
 */
#ifndef XENON_VIRTIO_BLK_H
#define XENON_VIRTIO_BLK_H

#include <stdint.h>

#include "virtio.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8

struct blk_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

/*
 * One request on queue 0, waited for: the device's status byte (0 = OK), or the negative error of
 * virtio_request when the transport failed. `len` 0 sends no data buffer (FLUSH).
 */
static inline long virtio_blk_request(struct virtio_dev *dev, struct blk_hdr *hdr, uint8_t *status, uint32_t type,
                                      uint64_t sector, void *buf, uint32_t len, int device_writes) {
  hdr->type = type;
  hdr->reserved = 0;
  hdr->sector = sector;
  *status = 0xff;
  struct virtio_buf b[3] = {{hdr, sizeof *hdr, 0}, {buf, len, device_writes}, {status, 1, 1}};
  struct virtio_buf s[2] = {{hdr, sizeof *hdr, 0}, {status, 1, 1}};
  long rc = len ? virtio_request(dev, 0, b, 3) : virtio_request(dev, 0, s, 2);
  return rc < 0 ? rc : *status;
}

#endif
