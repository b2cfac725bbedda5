/*
 * The frame protocol of netping and kvstore (packages/guests/README.md, "Net images ... and their frame protocol"):
 * Ethernet II frames of ethertype 0x88B5 (IEEE 802 local experimental), whose payload starts with
 * this 8-byte header, then `klen` key bytes, then `vlen` value bytes. Little-endian. A reply
 * carries the request's op | XNP_REPLY, its seq, and a status.
 */
#ifndef XENON_NETPROTO_H
#define XENON_NETPROTO_H

#include <stdint.h>
#include <string.h>

#include "virtio_net.h"

#define XNP_ETHERTYPE 0x88b5
#define XNP_MAGIC 0x58 /* 'X' */

#define XNP_PING 1
#define XNP_GET 2
#define XNP_PUT 3
#define XNP_DEL 4
#define XNP_STOP 5
#define XNP_DATA 6
#define XNP_REPLY 0x80

#define XNP_OK 0
#define XNP_NOT_FOUND 1
#define XNP_NO_SPACE 2
#define XNP_BAD_REQUEST 3
#define XNP_IO_ERROR 4
#define XNP_REFUSED 5

#define XNP_KEY_MAX 32
#define XNP_VALUE_MAX 200

struct xnp_hdr {
  uint8_t magic;
  uint8_t op;
  uint16_t seq;
  uint8_t status;
  uint8_t klen;
  uint16_t vlen;
};

#define XNP_OFF (ETH_HLEN + sizeof(struct xnp_hdr))

/* Fills the Ethernet and protocol headers of `f`; returns the offset of the key. */
static inline uint32_t xnp_build(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint8_t op, uint16_t seq,
                                 uint8_t status, uint8_t klen, uint16_t vlen) {
  memcpy(f, dst, ETH_ALEN);
  memcpy(f + ETH_ALEN, src, ETH_ALEN);
  f[12] = XNP_ETHERTYPE >> 8;
  f[13] = XNP_ETHERTYPE & 0xff;
  struct xnp_hdr h = {XNP_MAGIC, op, seq, status, klen, vlen};
  memcpy(f + ETH_HLEN, &h, sizeof h);
  return (uint32_t)XNP_OFF;
}

/* Parses a received frame: 1 with *h filled when it is a well-formed protocol frame, else 0. */
static inline int xnp_parse(const uint8_t *f, long len, struct xnp_hdr *h) {
  if (len < (long)XNP_OFF || f[12] != (XNP_ETHERTYPE >> 8) || f[13] != (XNP_ETHERTYPE & 0xff)) return 0;
  memcpy(h, f + ETH_HLEN, sizeof *h);
  if (h->magic != XNP_MAGIC || h->klen > XNP_KEY_MAX || h->vlen > XNP_VALUE_MAX) return 0;
  return (long)XNP_OFF + h->klen + h->vlen <= len;
}

/* "00:16:3e:00:00:01" -> mac; 0 or -1. */
static inline int xnp_parse_mac(const char *s, uint8_t *mac) {
  for (unsigned i = 0; i < ETH_ALEN; i++) {
    unsigned v = 0;
    for (unsigned j = 0; j < 2; j++) {
      char c = *s++;
      unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                          : 16u;
      if (d > 15) return -1;
      v = v * 16 + d;
    }
    mac[i] = (uint8_t)v;
    if (i < 5 && *s++ != ':') return -1;
  }
  return *s == 0 ? 0 : -1;
}

#define XNP_MAC_FMT "%02x:%02x:%02x:%02x:%02x:%02x"
#define XNP_MAC_ARGS(m) (m)[0], (m)[1], (m)[2], (m)[3], (m)[4], (m)[5]

#endif
