/*
 * netping: talks to another guest over virtio-net and the host's switch, in the frame protocol of
 * netproto.h (ethertype 0x88B5).
 *
 *   bootargs: mode=ping|echo|kv|flood|hostile (ping)  peer=<MAC>  count=<n> (4)  size=<payload bytes> (64)
 *             keys=<n> (8)  put=0|1 (1)  seed=<n> (1)  stop=0|1 (0)  timeout=<ms per try> (500)
 *             tries=<n> (40)
 *
 * ping:  sends `count` PINGs of `size` bytes to peer, each retried until its reply:
 *        "netping: reply seq S from MAC", then "netping: done R/N replies, L lost".
 * echo:  answers PINGs, counts DATA frames, until a STOP: "netping: echo answered P pings,
 *        received D data frames B bytes in T us".
 * kv:    PUTs keys key-0.. (values from seed) to a kvstore peer (unless put=0), GETs and verifies
 *        them: "netping: kv put P get G verified V errors E", then "netping: done ...".
 * flood: sends `count` DATA frames of `size` bytes back to back, then pings until answered:
 *        "netping: flood sent N frames B bytes in T us".
 * hostile: sends frames the device or switch must drop and frames peers must ignore, then a
 *        transmit chain shorter than a header: "netping: hostile short chain: RC, device status S".
 * stop=1 sends STOP to the peer at the end (echo and kvstore started with stop=1 then exit).
 * Exits 0 when everything was answered and verified, else crashes.
 */
#include <stdio.h>
#include <string.h>

#include "netproto.h"
#include "virtio_net.h"
#include "xenon.h"

static struct virtio_net net;
static uint8_t peer[ETH_ALEN];
static uint8_t txf[ETH_FRAME_MAX];
static uint8_t rxf[ETH_FRAME_MAX];
static uint32_t timeout_ms, tries;

static int send(uint8_t op, uint16_t seq, uint8_t status, const void *key, uint8_t klen, const void *val,
                uint16_t vlen, const uint8_t *to) {
  uint32_t off = xnp_build(txf, to, net.mac, op, seq, status, klen, vlen);
  memcpy(txf + off, key, klen);
  memcpy(txf + off + klen, val, vlen);
  int rc = virtio_net_send(&net, txf, off + klen + vlen);
  if (rc < 0) printf("netping: send failed (%d)\n", rc);
  return rc;
}

/* Sends a request and waits for its reply (same op | REPLY and seq), retrying. Reply length or -1. */
static long request(uint8_t op, uint16_t seq, const void *key, uint8_t klen, const void *val, uint16_t vlen,
                    struct xnp_hdr *h) {
  for (uint32_t t = 0; t < tries; t++) {
    if (send(op, seq, 0, key, klen, val, vlen, peer) < 0) return -1;
    for (;;) {
      long len = virtio_net_recv(&net, rxf, sizeof rxf, timeout_ms);
      if (len < 0) {
        printf("netping: receive failed (%ld)\n", len);
        return -1;
      }
      if (len == 0) break; /* timed out: send again */
      if (xnp_parse(rxf, len, h) && h->op == (op | XNP_REPLY) && h->seq == seq) return len;
    }
  }
  return -1;
}

static void value_for(uint32_t seed, uint32_t i, char *out, uint16_t *len) {
  int n = snprintf(out, XNP_VALUE_MAX, "value-%u-%u-", (unsigned)i, (unsigned)seed);
  uint32_t x = seed * 2654435761u + i;
  uint16_t want = (uint16_t)(16 + (i * 37) % 100);
  while (n < want) {
    x = x * 1103515245u + 12345u;
    out[n++] = (char)('a' + (x >> 16) % 26);
  }
  *len = (uint16_t)n;
}

static int mode_ping(uint32_t count, uint32_t size) {
  static uint8_t payload[XNP_VALUE_MAX];
  if (size > sizeof payload) size = sizeof payload;
  for (uint32_t i = 0; i < size; i++) payload[i] = (uint8_t)(i * 7);
  uint32_t replies = 0;
  struct xnp_hdr h;
  for (uint32_t i = 0; i < count; i++) {
    long len = request(XNP_PING, (uint16_t)i, 0, 0, payload, (uint16_t)size, &h);
    if (len < 0) continue;
    if (h.vlen != size || memcmp(rxf + XNP_OFF, payload, size) != 0) {
      printf("netping: reply seq %u: payload differs\n", (unsigned)i);
      continue;
    }
    replies++;
    printf("netping: reply seq %u from " XNP_MAC_FMT "\n", (unsigned)i, XNP_MAC_ARGS(rxf + ETH_ALEN));
  }
  printf("netping: done %u/%u replies, %u lost\n", (unsigned)replies, (unsigned)count, (unsigned)(count - replies));
  return replies == count ? 0 : 1;
}

static int mode_echo(void) {
  uint32_t pings = 0, data = 0, bytes = 0;
  uint64_t first = 0, last = 0;
  struct xnp_hdr h;
  for (;;) {
    long len = virtio_net_recv(&net, rxf, sizeof rxf, 1000);
    if (len < 0) {
      printf("netping: receive failed (%ld)\n", len);
      return 1;
    }
    if (len == 0 || !xnp_parse(rxf, len, &h)) continue;
    const uint8_t *from = rxf + ETH_ALEN;
    if (h.op == XNP_DATA) {
      if (data == 0) first = timer_now_ns();
      last = timer_now_ns();
      data++;
      bytes += (uint32_t)len;
    } else if (h.op == XNP_PING) {
      pings++;
      send(XNP_PING | XNP_REPLY, h.seq, XNP_OK, 0, 0, rxf + XNP_OFF + h.klen, h.vlen, from);
    } else if (h.op == XNP_STOP) {
      send(XNP_STOP | XNP_REPLY, h.seq, XNP_OK, 0, 0, 0, 0, from);
      virtio_net_flush(&net); /* the reply must be out before this domain goes */
      break;
    }
  }
  printf("netping: echo answered %u pings, received %u data frames %u bytes in %u us\n", (unsigned)pings,
         (unsigned)data, (unsigned)bytes, (unsigned)((last - first) / 1000));
  return 0;
}

static int mode_flood(uint32_t count, uint32_t size) {
  struct xnp_hdr h;
  if (size + XNP_OFF > (uint32_t)net.mtu + ETH_HLEN) size = net.mtu + ETH_HLEN - (uint32_t)XNP_OFF;
  /* The peer is up once it answers a ping; then the frames go back to back. */
  if (request(XNP_PING, 0, 0, 0, 0, 0, &h) < 0) {
    printf("netping: no answer from the peer\n");
    return 1;
  }
  uint32_t off = xnp_build(txf, peer, net.mac, XNP_DATA, 0, 0, 0, 0);
  for (uint32_t i = off; i < off + size; i++) txf[i] = (uint8_t)i;
  uint64_t t0 = timer_now_ns();
  uint32_t sent = 0;
  for (uint32_t i = 0; i < count; i++) {
    txf[ETH_HLEN + 2] = (uint8_t)i;
    txf[ETH_HLEN + 3] = (uint8_t)(i >> 8);
    if (virtio_net_send(&net, txf, off + size) == 0) sent++;
  }
  virtio_net_flush(&net);
  uint64_t t1 = timer_now_ns();
  printf("netping: flood sent %u frames %u bytes in %u us\n", (unsigned)sent, (unsigned)(sent * (off + size)),
         (unsigned)((t1 - t0) / 1000));
  return request(XNP_PING, 1, 0, 0, 0, 0, &h) < 0 || sent != count;
}

/* Sends one transmit request as given (header bytes, frame bytes), bypassing the driver's checks. */
static long raw_tx(const struct virtio_net_hdr *h, uint32_t hlen, const uint8_t *f, uint32_t flen) {
  static uint8_t buf[2048] __attribute__((aligned(4096)));
  memcpy(buf, h, hlen);
  memcpy(buf + hlen, f, flen);
  struct virtio_buf b = {buf, hlen + flen, 0};
  return virtio_request(&net.dev, 1, &b, 1);
}

/*
 * A misbehaving guest for the isolation tests: frames the device or the switch must drop, frames
 * the other guests must ignore, then a transmit chain that breaks the queue.
 */
static int mode_hostile(void) {
  struct virtio_net_hdr ok = {0}, gso = {0};
  gso.gso_type = 1;
  static const uint8_t bcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint32_t sent = 0;
  uint32_t off = xnp_build(txf, bcast, net.mac, XNP_PING, 7, 0, 0, 4);
  sent += raw_tx(&gso, sizeof gso, txf, off + 4) >= 0;   /* an offload never negotiated: dropped */
  sent += raw_tx(&ok, sizeof ok, txf, 6) >= 0;            /* a runt: dropped by the device */
  memset(txf + ETH_ALEN, 0xff, ETH_ALEN);                 /* a broadcast source MAC: dropped by the switch */
  sent += raw_tx(&ok, sizeof ok, txf, off + 4) >= 0;
  memcpy(txf + ETH_ALEN, net.mac, ETH_ALEN);
  txf[ETH_HLEN + 5] = 0xff; /* klen 255: the protocol parsers must ignore it */
  sent += raw_tx(&ok, sizeof ok, txf, off + 4) >= 0;
  xnp_build(txf, bcast, net.mac, XNP_PING, 8, 0, 0, XNP_VALUE_MAX); /* claims more than it carries */
  sent += raw_tx(&ok, sizeof ok, txf, off + 4) >= 0;
  for (uint32_t i = 0; i < 32; i++) sent += raw_tx(&ok, sizeof ok, txf, 14 + i) >= 0; /* junk payloads */
  printf("netping: hostile sent %u malformed frames\n", (unsigned)sent);
  /* Fewer bytes than a virtio_net_hdr: the device must give up on the queue (DEVICE_NEEDS_RESET). */
  long rc = raw_tx(&ok, 4, txf, 0);
  printf("netping: hostile short chain: %ld, device status %#x\n", rc, (unsigned)virtio_status(&net.dev));
  return (virtio_status(&net.dev) & 0x40) ? 0 : 1;
}

static int mode_kv(uint32_t keys, int put, uint32_t seed) {
  struct xnp_hdr h;
  if (request(XNP_PING, 0, 0, 0, 0, 0, &h) < 0) {
    printf("netping: no answer from the kvstore\n");
    return 1;
  }
  uint32_t puts = 0, gets = 0, verified = 0, errors = 0;
  uint16_t seq = 1;
  char key[XNP_KEY_MAX], val[XNP_VALUE_MAX];
  uint16_t vlen;
  for (uint32_t i = 0; put && i < keys; i++) {
    int klen = snprintf(key, sizeof key, "key-%u", (unsigned)i);
    value_for(seed, i, val, &vlen);
    if (request(XNP_PUT, seq++, key, (uint8_t)klen, val, vlen, &h) < 0 || h.status != XNP_OK) {
      printf("netping: PUT %s failed (status %d)\n", key, h.status);
      errors++;
    } else puts++;
  }
  for (uint32_t i = 0; i < keys; i++) {
    int klen = snprintf(key, sizeof key, "key-%u", (unsigned)i);
    value_for(seed, i, val, &vlen);
    if (request(XNP_GET, seq++, key, (uint8_t)klen, 0, 0, &h) < 0) {
      errors++;
      continue;
    }
    gets++;
    if (h.status == XNP_OK && h.vlen == vlen && memcmp(rxf + XNP_OFF + h.klen, val, vlen) == 0) verified++;
    else {
      printf("netping: GET %s: status %d, %u bytes, not the value put\n", key, h.status, (unsigned)h.vlen);
      errors++;
    }
    if ((i + 1) % 8 == 0 || i + 1 == keys) printf("netping: kv %u/%u verified\n", (unsigned)verified, (unsigned)keys);
  }
  printf("netping: kv put %u get %u verified %u errors %u\n", (unsigned)puts, (unsigned)gets, (unsigned)verified,
         (unsigned)errors);
  return errors ? 1 : 0;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *mode = bootarg_str("mode", "ping");
  uint32_t count = bootarg_u32("count", 4);
  uint32_t size = bootarg_u32("size", 64);
  timeout_ms = bootarg_u32("timeout", 500);
  tries = bootarg_u32("tries", 40);
  int rc = events_init(vcpu_id);
  if (rc < 0 || (rc = virtio_net_open(&net, 0)) < 0) {
    printf("netping: FAILED no virtio-net device (%d)\n", rc);
    return 1;
  }
  irq_enable();
  printf("netping: mac " XNP_MAC_FMT " mtu %u backend d%u grants %d mode %s\n", XNP_MAC_ARGS(net.mac),
         (unsigned)net.mtu, (unsigned)net.dev.backend, net.dev.grants, mode);
  int echo = strcmp(mode, "echo") == 0 || strcmp(mode, "hostile") == 0;
  if (!echo && xnp_parse_mac(bootarg_str("peer", ""), peer) < 0) {
    printf("netping: FAILED peer=<MAC> needed for mode %s\n", mode);
    return 1;
  }
  int bad;
  if (strcmp(mode, "hostile") == 0) bad = mode_hostile();
  else if (echo) bad = mode_echo();
  else if (strcmp(mode, "ping") == 0) bad = mode_ping(count, size);
  else if (strcmp(mode, "kv") == 0) bad = mode_kv(bootarg_u32("keys", 8), (int)bootarg_u32("put", 1), bootarg_u32("seed", 1));
  else if (strcmp(mode, "flood") == 0) bad = mode_flood(count, size);
  else {
    printf("netping: FAILED unknown mode %s\n", mode);
    return 1;
  }
  if (!echo && bootarg_u32("stop", 0)) {
    struct xnp_hdr h;
    if (request(XNP_STOP, 0xffff, 0, 0, 0, 0, &h) < 0 || h.status != XNP_OK) {
      printf("netping: the peer did not stop\n");
      bad = 1;
    }
  }
  virtio_net_flush(&net);
  printf("netping: %s, rx %u tx %u\n", bad ? "FAILED" : "ok", (unsigned)net.rx_packets, (unsigned)net.tx_packets);
  return bad;
}
