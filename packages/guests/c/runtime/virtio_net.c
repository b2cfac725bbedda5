/*
 * The virtio-net driver (include/virtio_net.h). Receive buffers stay posted: each is submitted
 * once at open and again as soon as its frame has been copied out. Transmit keeps up to
 * VIRTIO_NET_TX_BUFS frames in flight, so the backend takes a batch per notification (with
 * EVENT_IDX the driver kicks only when the backend asked). A receive with a timeout sleeps on the device's interrupt and a
 * one-shot timer, both counted in dev.irqs.
 */
#include "virtio_net.h"

#include <string.h>

#include "events.h"
#include "stdlib.h"
#include "timer.h"
#include "trap.h"
#include "xenon.h"

#define RXQ 0
#define TXQ 1

static uint8_t tx_bufs[VIRTIO_NET_TX_BUFS][VIRTIO_NET_RX_BUF_SIZE] __attribute__((aligned(4096)));
static struct virtio_net *timer_owner;
static int timer_bound;

static void on_timer(evtchn_port_t port, void *arg) {
  (void)port;
  (void)arg;
  if (timer_owner) timer_owner->dev.irqs++;
}

static int post_rx(struct virtio_net *n, int b) {
  struct virtio_buf buf = {n->rx_bufs + b * VIRTIO_NET_RX_BUF_SIZE, VIRTIO_NET_RX_BUF_SIZE, 1};
  int head = virtio_submit(&n->dev, RXQ, &buf, 1);
  if (head < 0) return head;
  n->head_buf[head] = (int8_t)b;
  return 0;
}

int virtio_net_open(struct virtio_net *n, unsigned nth) {
  memset(n, 0, sizeof *n);
  struct virtio_dev *d = &n->dev;
  int rc = virtio_find(VIRTIO_ID_NET, nth, d);
  if (rc < 0) return rc;
  rc = virtio_negotiate(d, 1u << VIRTIO_NET_F_MAC, (1u << VIRTIO_NET_F_STATUS) | (1u << VIRTIO_NET_F_MTU));
  if (rc < 0) return rc;
  if ((rc = virtio_queue_setup(d, RXQ, VIRTIO_NET_RX_BUFS)) < 0) return rc;
  if ((rc = virtio_queue_setup(d, TXQ, VIRTIO_NET_TX_BUFS)) < 0) return rc;
  if (d->queues[RXQ].size != VIRTIO_NET_RX_BUFS) return -XEN_ENOSPC;
  /* Config space: mac[6] at 0, status u16 at 6, max_virtqueue_pairs u16 at 8, mtu u16 at 10. */
  uint32_t w0 = virtio_config32(d, 0), w1 = virtio_config32(d, 4);
  for (unsigned i = 0; i < 4; i++) n->mac[i] = (uint8_t)(w0 >> (8 * i));
  n->mac[4] = (uint8_t)w1;
  n->mac[5] = (uint8_t)(w1 >> 8);
  n->mtu = ETH_FRAME_MAX - ETH_HLEN;
  if (d->features_lo & (1u << VIRTIO_NET_F_MTU)) {
    uint16_t mtu = virtio_config16(d, 10);
    if (mtu >= 68 && mtu < n->mtu) n->mtu = mtu;
  }
  if (!n->rx_bufs) n->rx_bufs = aligned_alloc(4096, VIRTIO_NET_RX_BUFS * VIRTIO_NET_RX_BUF_SIZE);
  if (!n->rx_bufs) return -XEN_ENOMEM;
  /* Receive buffers go up before DRIVER_OK (§5.1.6.3: the device may deliver at once). */
  for (int b = 0; b < VIRTIO_NET_RX_BUFS; b++)
    if ((rc = post_rx(n, b)) < 0) return rc;
  if ((rc = virtio_driver_ok(d)) < 0) return rc;
  virtio_notify(d, RXQ);
  if (!timer_bound) {
    evtchn_port_t port;
    if ((rc = timer_bind_virq(0, on_timer, 0, &port)) < 0) return rc;
    timer_bound = 1;
  }
  timer_owner = n;
  return 0;
}

/* Takes back one completed transmit buffer: `block` waits for one. 1 reclaimed, 0 none, or -errno. */
static int tx_reclaim(struct virtio_net *n, int block) {
  uint16_t head;
  long rc = block ? virtio_wait_used(&n->dev, TXQ, &head) : virtio_get_used(&n->dev, TXQ, &head);
  if (rc == -XEN_EAGAIN) return 0;
  if (rc < 0 && rc != -XEN_EBUSY) return (int)rc;
  if (rc == -XEN_EBUSY) n->tx_errors++; /* the backend kept the page mapped; the buffer is ours again anyway */
  n->tx_busy &= (uint8_t)~(1u << n->tx_head_buf[head]);
  return 1;
}

int virtio_net_send(struct virtio_net *n, const void *frame, uint32_t len) {
  if (len < ETH_HLEN || len > (uint32_t)n->mtu + ETH_HLEN) return -XEN_EINVAL;
  int rc;
  while ((rc = tx_reclaim(n, 0)) > 0) {
  }
  if (rc < 0) return rc;
  const uint8_t all = (uint8_t)((1u << VIRTIO_NET_TX_BUFS) - 1);
  while (n->tx_busy == all)
    if ((rc = tx_reclaim(n, 1)) < 0) return rc;
  int b = 0;
  while (n->tx_busy & (1u << b)) b++;
  memset(tx_bufs[b], 0, sizeof(struct virtio_net_hdr));
  memcpy(tx_bufs[b] + sizeof(struct virtio_net_hdr), frame, len);
  struct virtio_buf vb = {tx_bufs[b], (uint32_t)sizeof(struct virtio_net_hdr) + len, 0};
  int head = virtio_submit(&n->dev, TXQ, &vb, 1);
  if (head < 0) return head;
  n->tx_head_buf[head] = (int8_t)b;
  n->tx_busy |= (uint8_t)(1u << b);
  virtio_notify(&n->dev, TXQ);
  n->tx_packets++;
  return 0;
}

int virtio_net_flush(struct virtio_net *n) {
  while (n->tx_busy) {
    int rc = tx_reclaim(n, 1);
    if (rc < 0) return rc;
  }
  return 0;
}

long virtio_net_recv(struct virtio_net *n, void *frame, uint32_t max, uint32_t timeout_ms) {
  struct virtio_dev *d = &n->dev;
  struct virtq *q = &d->queues[RXQ];
  uint64_t deadline = timer_now_ns() + (uint64_t)timeout_ms * 1000000u;
  int armed = 0, woke = 0;
  for (;;) {
    uint32_t seen = d->irqs;
    if (d->event_idx && !d->poll) q->avail[2 + q->size] = q->last_used; /* interrupt me for the next one */
    __sync_synchronize();
    uint16_t head;
    long len = virtio_get_used(d, RXQ, &head);
    if (len >= 0) {
      int b = n->head_buf[head];
      long got = 0;
      if ((uint32_t)len > VIRTIO_NET_RX_BUF_SIZE) return -XEN_EIO; /* the device claims more than the buffer */
      if ((uint32_t)len >= sizeof(struct virtio_net_hdr) + ETH_HLEN) {
        got = len - (long)sizeof(struct virtio_net_hdr);
        if ((uint32_t)got > max) got = (long)max;
        memcpy(frame, n->rx_bufs + b * VIRTIO_NET_RX_BUF_SIZE + sizeof(struct virtio_net_hdr), (size_t)got);
        n->rx_packets++;
      } else {
        n->rx_errors++; /* returned unused: the device dropped a frame too big for it */
      }
      int rc = post_rx(n, b);
      if (rc < 0) return rc;
      virtio_notify(d, RXQ);
      if (got > 0) return got;
      continue;
    }
    if (len != -XEN_EAGAIN) return len;
    /* The status only when woken for nothing (or polling): see virtio_wait_used. */
    if (woke) virtio_ack_interrupt(d);
    if ((woke || d->poll) && (virtio_status(d) & VIRTIO_S_NEEDS_RESET)) return -XEN_EIO;
    if (timeout_ms == 0 || timer_now_ns() >= deadline) return 0;
    if (d->poll) {
      xen_yield();
      continue;
    }
    if (!armed) {
      timer_set_singleshot(0, deadline, 0);
      armed = 1;
    }
    wait_for_change(&d->irqs, seen);
    woke = 1;
  }
}
