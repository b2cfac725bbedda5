/*
 * rngcat: reads random bytes from a virtio-rng device (virtio-mmio, found in the device tree)
 * whose backend runs in a driver domain and reaches only the pages this guest grants it.
 *
 *   bootargs: bytes=<n, default 64> rounds=<requests, default 4>
 *
 * Prints "rngcat: device at 0x... port P backend dB grants G", one line of hex per request, then
 * "rngcat: got N random bytes in R requests" and powers off. A request that fails, or bytes that
 * are all zero, end with "rngcat: FAILED ...".
 */
#include <stdio.h>
#include <string.h>

#include "virtio.h"
#include "xenon.h"

static uint8_t buf[4096] __attribute__((aligned(4096)));

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t bytes = bootarg_u32("bytes", 64);
  uint32_t rounds = bootarg_u32("rounds", 4);
  if (bytes == 0 || bytes > sizeof buf) bytes = 64;
  int rc = events_init(vcpu_id);
  if (rc < 0) {
    printf("rngcat: FAILED events_init (%d)\n", rc);
    return 1;
  }
  struct virtio_dev dev;
  if ((rc = virtio_find(VIRTIO_ID_ENTROPY, 0, &dev)) < 0) {
    printf("rngcat: FAILED no virtio-rng device (%d)\n", rc);
    return 1;
  }
  printf("rngcat: device at %#x port %u backend d%u grants %d\n", (unsigned)dev.base, (unsigned)dev.port,
         (unsigned)dev.backend, dev.grants);
  if ((rc = virtio_negotiate(&dev, 0, 0)) < 0 || (rc = virtio_queue_setup(&dev, 0, 8)) < 0 ||
      (rc = virtio_driver_ok(&dev)) < 0) {
    printf("rngcat: FAILED device setup (%d)\n", rc);
    return 1;
  }
  irq_enable();
  uint32_t total = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    memset(buf, 0, bytes);
    struct virtio_buf b = {buf, bytes, 1};
    long got = virtio_request(&dev, 0, &b, 1);
    if (got <= 0 || (uint32_t)got > bytes) {
      printf("rngcat: FAILED request %u (%ld, status %#x)\n", (unsigned)r, got, (unsigned)virtio_status(&dev));
      return 1;
    }
    int nonzero = 0;
    char line[2 * 32 + 1];
    unsigned show = got < 32 ? (unsigned)got : 32;
    for (unsigned i = 0; i < (unsigned)got; i++) nonzero |= buf[i];
    for (unsigned i = 0; i < show; i++) snprintf(line + 2 * i, 3, "%02x", buf[i]);
    line[2 * show] = 0;
    if (!nonzero) {
      printf("rngcat: FAILED all-zero bytes\n");
      return 1;
    }
    printf("rngcat: %s\n", line);
    total += (uint32_t)got;
  }
  printf("rngcat: got %u random bytes in %u requests\n", (unsigned)total, (unsigned)rounds);
  return 0;
}
