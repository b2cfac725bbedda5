/* The virtio-console driver (include/virtio_console.h). */
#include "virtio_console.h"

#include <string.h>

#define RECEIVEQ 0
#define TRANSMITQ 1

static uint8_t rx_page[VCON_RX_BUFS][VCON_RX_BYTES] __attribute__((aligned(4096)));
static uint8_t tx_page[4096] __attribute__((aligned(4096)));

_Static_assert(sizeof rx_page == 4096, "the receive buffers fill exactly one page");

static int post_rx(struct vcon *c, int b) {
  struct virtio_buf buf = {rx_page[b], VCON_RX_BYTES, 1};
  int head = virtio_submit(&c->dev, RECEIVEQ, &buf, 1);
  if (head < 0) return head;
  c->head_buf[head] = (int8_t)b;
  return 0;
}

int vcon_init(struct vcon *c, unsigned nth) {
  memset(c, 0, sizeof *c);
  c->cur = -1;
  int rc = virtio_find(VIRTIO_ID_CONSOLE, nth, &c->dev);
  if (rc < 0) return rc;
  rc = virtio_negotiate(&c->dev, 0, VIRTIO_CONSOLE_F_SIZE | VIRTIO_CONSOLE_F_EMERG_WRITE);
  if (rc < 0) return rc;
  if ((rc = virtio_queue_setup(&c->dev, RECEIVEQ, VCON_RX_BUFS)) < 0) return rc;
  if ((rc = virtio_queue_setup(&c->dev, TRANSMITQ, 4)) < 0) return rc;
  if (c->dev.features_lo & VIRTIO_CONSOLE_F_SIZE) {
    c->cols = virtio_config16(&c->dev, 0);
    c->rows = virtio_config16(&c->dev, 2);
  }
  c->emerg = (c->dev.features_lo & VIRTIO_CONSOLE_F_EMERG_WRITE) != 0;
  /* Receive buffers go up before DRIVER_OK (§5.3.6.1: the device may send at once). */
  for (int b = 0; b < VCON_RX_BUFS; b++)
    if ((rc = post_rx(c, b)) < 0) return rc;
  if ((rc = virtio_driver_ok(&c->dev)) < 0) return rc;
  virtio_notify(&c->dev, RECEIVEQ);
  return 0;
}

int vcon_write(struct vcon *c, const void *buf, uint32_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    uint32_t n = len < sizeof tx_page ? len : sizeof tx_page;
    memcpy(tx_page, p, n);
    struct virtio_buf b = {tx_page, n, 0};
    long rc = virtio_request(&c->dev, TRANSMITQ, &b, 1);
    if (rc < 0) return (int)rc;
    c->tx_bytes += n;
    p += n;
    len -= n;
  }
  return 0;
}

long vcon_read(struct vcon *c, void *buf, uint32_t max, int block) {
  while (c->cur < 0) {
    uint16_t head;
    long rc = block ? virtio_wait_used(&c->dev, RECEIVEQ, &head) : virtio_get_used(&c->dev, RECEIVEQ, &head);
    if (rc == -XEN_EAGAIN) return 0;
    if (rc < 0) return rc;
    if ((uint32_t)rc > VCON_RX_BYTES) return -XEN_EIO; /* the device claims more than the buffer */
    int b = c->head_buf[head];
    if (rc == 0) {
      if ((rc = post_rx(c, b)) < 0) return rc;
      continue;
    }
    c->cur = b;
    c->cur_len = (uint32_t)rc;
    c->cur_off = 0;
  }
  uint32_t n = c->cur_len - c->cur_off;
  if (n > max) n = max;
  memcpy(buf, rx_page[c->cur] + c->cur_off, n);
  c->cur_off += n;
  c->rx_bytes += n;
  if (c->cur_off == c->cur_len) {
    int rc = post_rx(c, c->cur);
    c->cur = -1;
    if (rc < 0) return rc;
    virtio_notify(&c->dev, RECEIVEQ);
  }
  return (long)n;
}

int vcon_emerg_write(struct vcon *c, char ch) {
  if (!c->emerg) return -XEN_EOPNOTSUPP;
  virtio_config_write8(&c->dev, 8, (uint8_t)ch);
  return 0;
}
