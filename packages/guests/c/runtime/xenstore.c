/*
 * XenStore client over the ring page; see include/xenstore.h.
 *
 * Invariants: we own req_prod and rsp_cons and only ever advance them; every index the daemon
 * owns is read once per step and checked (a producer more than a ring ahead means a broken
 * daemon or ring: -XEN_EIO). Bytes are copied before the index that publishes them is written
 * (fence in between), and an index we read is read before the bytes it covers (fence again).
 * Sleeping is wait_for_change on a counter the port's handler bumps, sampled before each check,
 * so an event landing between the check and the sleep is never lost.
 */
#include "xenstore.h"

#include <stdio.h>
#include <string.h>

#include "events.h"
#include "hypercall.h"
#include "trap.h"

#define XS_HEADER_SIZE 16

static volatile struct xenstore_domain_interface *intf;
static evtchn_port_t port;
static volatile uint32_t kicks;
static uint32_t next_req_id = 1;
uint32_t xs_watch_dropped;

/* Payload of the message being received (+1 for a terminating NUL). */
static char rx[XENSTORE_PAYLOAD_MAX + 1];

static struct {
  char data[XS_WATCH_EVENT_MAX]; /* path\0token\0 */
  uint32_t len;
} watch_q[XS_WATCH_QUEUE];
static unsigned wq_head, wq_count;

static inline void fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }
static int ring_broken(void);

static void on_event(evtchn_port_t p, void *arg) {
  (void)p;
  (void)arg;
  kicks++;
}

static int hvm_get(uint32_t index, uint64_t *value) {
  struct xen_hvm_param a;
  memset(&a, 0, sizeof a);
  a.domid = DOMID_SELF;
  a.index = index;
  long rc = HYPERVISOR_hvm_op(HVMOP_get_param, &a);
  if (rc < 0) return (int)rc;
  *value = a.value;
  return 0;
}

int xs_init(void) {
  uint64_t pfn = 0, evtchn = 0;
  int rc = hvm_get(HVM_PARAM_STORE_PFN, &pfn);
  if (rc < 0) return rc;
  if ((rc = hvm_get(HVM_PARAM_STORE_EVTCHN, &evtchn)) < 0) return rc;
  /* 0: no XenStore for us; ~0: not allocated yet (dom0less before init-dom0less) — not handled. */
  if (pfn == 0 || pfn >= 0x100000 || evtchn == 0 || evtchn >= EVTCHN_2L_NR_CHANNELS) return -XEN_ENODEV;
  intf = (volatile struct xenstore_domain_interface *)(uintptr_t)(pfn << 12);
  port = (evtchn_port_t)evtchn;
  if ((rc = evtchn_bind_handler(port, on_event, 0)) < 0) return rc;
  /* A reconnection may be under way (set before we booted): only the server clears it. */
  while (intf->connection != XENSTORE_CONNECTED) {
    uint32_t seen = kicks;
    if (intf->connection == XENSTORE_CONNECTED || ring_broken()) break;
    wait_for_change(&kicks, seen);
  }
  return 0;
}

int xs_reconnect(void) {
  if (intf == 0) return -XEN_ENODEV;
  if (!(intf->server_features & XENSTORE_SERVER_FEATURE_RECONNECTION)) return -XEN_EOPNOTSUPP;
  intf->connection = XENSTORE_RECONNECT;
  fence();
  evtchn_send(port);
  for (;;) {
    uint32_t seen = kicks;
    fence();
    if (intf->connection == XENSTORE_CONNECTED) break;
    if (ring_broken()) return -XEN_EIO;
    wait_for_change(&kicks, seen);
  }
  /* The server dropped our watches and whatever it had queued for us. */
  wq_head = wq_count = 0;
  return 0;
}

evtchn_port_t xs_port(void) { return port; }
volatile struct xenstore_domain_interface *xs_ring(void) { return intf; }

/* The daemon wrote `error`: it gave up on this ring. */
static int ring_broken(void) { return intf->error != XENSTORE_ERROR_NONE; }

static int ring_write(const uint8_t *p, uint32_t len) {
  while (len > 0) {
    uint32_t seen = kicks;
    XENSTORE_RING_IDX cons = intf->req_cons, prod = intf->req_prod;
    fence();
    if (ring_broken() || prod - cons > XENSTORE_RING_SIZE) return -XEN_EIO;
    uint32_t room = XENSTORE_RING_SIZE - (prod - cons);
    if (room == 0) {
      wait_for_change(&kicks, seen);
      continue;
    }
    uint32_t at = MASK_XENSTORE_IDX(prod);
    uint32_t n = len;
    if (n > room) n = room;
    if (n > XENSTORE_RING_SIZE - at) n = XENSTORE_RING_SIZE - at;
    for (uint32_t i = 0; i < n; i++) intf->req[at + i] = (char)p[i];
    fence();
    intf->req_prod = prod + n;
    evtchn_send(port);
    p += n;
    len -= n;
  }
  return 0;
}

static int ring_read(uint8_t *p, uint32_t len) {
  while (len > 0) {
    uint32_t seen = kicks;
    XENSTORE_RING_IDX cons = intf->rsp_cons, prod = intf->rsp_prod;
    fence();
    if (prod - cons > XENSTORE_RING_SIZE) return -XEN_EIO;
    if (prod == cons) {
      if (ring_broken()) return -XEN_EIO;
      wait_for_change(&kicks, seen);
      continue;
    }
    uint32_t at = MASK_XENSTORE_IDX(cons);
    uint32_t n = prod - cons;
    if (n > len) n = len;
    if (n > XENSTORE_RING_SIZE - at) n = XENSTORE_RING_SIZE - at;
    for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)intf->rsp[at + i];
    fence();
    intf->rsp_cons = cons + n;
    /* The daemon waits for room only when it found rsp full; otherwise it has nothing to resume. */
    if (prod - cons == XENSTORE_RING_SIZE) evtchn_send(port);
    p += n;
    len -= n;
  }
  return 0;
}

static void queue_watch_event(uint32_t len) {
  /* Room for the payload plus two NULs, so path and token are terminated whatever was sent. */
  if (len + 2 > XS_WATCH_EVENT_MAX) {
    xs_watch_dropped++;
    return;
  }
  if (wq_count == XS_WATCH_QUEUE) {
    wq_head = (wq_head + 1) % XS_WATCH_QUEUE;
    wq_count--;
    xs_watch_dropped++;
  }
  unsigned slot = (wq_head + wq_count) % XS_WATCH_QUEUE;
  memcpy(watch_q[slot].data, rx, len);
  watch_q[slot].data[len] = 0;
  watch_q[slot].data[len + 1] = 0;
  watch_q[slot].len = len;
  wq_count++;
}

/* Receives one message into rx (NUL-terminated); watch events are queued and 0 is returned
 * with *type = XS_WATCH_EVENT. Returns the payload length or -errno. */
static int read_message(struct xsd_sockmsg *h) {
  int rc = ring_read((uint8_t *)h, sizeof *h);
  if (rc < 0) return rc;
  if (h->len > XENSTORE_PAYLOAD_MAX) return -XEN_EIO;
  if ((rc = ring_read((uint8_t *)rx, h->len)) < 0) return rc;
  rx[h->len] = 0;
  if (h->type == XS_WATCH_EVENT) queue_watch_event(h->len);
  return (int)h->len;
}

static const struct {
  const char *name;
  int err;
} xs_errors[] = {
    {"EINVAL", XEN_EINVAL}, {"EACCES", XEN_EACCES}, {"EEXIST", XEN_EEXIST}, {"EISDIR", 21},
    {"ENOENT", XEN_ENOENT}, {"ENOMEM", XEN_ENOMEM}, {"ENOSPC", XEN_ENOSPC}, {"EIO", XEN_EIO},
    {"ENOTEMPTY", 39},      {"ENOSYS", XEN_ENOSYS}, {"EROFS", 30},         {"EBUSY", XEN_EBUSY},
    {"EAGAIN", XEN_EAGAIN}, {"EISCONN", 106},       {"E2BIG", XEN_E2BIG},  {"EPERM", XEN_EPERM},
};

static int error_code(const char *name) {
  for (unsigned i = 0; i < sizeof xs_errors / sizeof xs_errors[0]; i++)
    if (strcmp(name, xs_errors[i].name) == 0) return -xs_errors[i].err;
  return -XEN_EIO;
}

int xs_request(enum xsd_sockmsg_type type, xs_transaction_t t, const void *payload, uint32_t len, char *out,
               uint32_t cap) {
  if (intf == 0) return -XEN_ENODEV;
  if (len > XENSTORE_PAYLOAD_MAX) return -XEN_E2BIG;
  /* Header and payload in one piece: one notification for a request that fits. */
  static uint8_t msg[XS_HEADER_SIZE + XENSTORE_PAYLOAD_MAX];
  struct xsd_sockmsg h = {.type = type, .req_id = next_req_id++, .tx_id = t, .len = len};
  memcpy(msg, &h, sizeof h);
  memcpy(msg + sizeof h, payload, len);
  int rc = ring_write(msg, (uint32_t)sizeof h + len);
  if (rc < 0) return rc;
  for (;;) {
    struct xsd_sockmsg r;
    rc = read_message(&r);
    if (rc < 0) return rc;
    if (r.type == XS_WATCH_EVENT) continue;
    if (r.req_id != h.req_id) continue; /* not ours: a stale reply, skip it */
    if (r.type == XS_ERROR) return error_code(rx);
    if (r.type != (uint32_t)type) return -XEN_EIO;
    if (out != 0 && cap > 0) {
      uint32_t n = r.len < cap - 1 ? r.len : cap - 1;
      memcpy(out, rx, n);
      out[n] = 0;
    }
    return (int)r.len;
  }
}

/* "a\0b\0" payloads; returns the length or -XEN_E2BIG. */
static int join2(char *buf, const char *a, const char *b, int nul_after_b) {
  size_t la = strlen(a) + 1, lb = b ? strlen(b) + (nul_after_b ? 1 : 0) : 0;
  if (la + lb > XENSTORE_PAYLOAD_MAX) return -XEN_E2BIG;
  memcpy(buf, a, la);
  if (b) memcpy(buf + la, b, lb);
  return (int)(la + lb);
}

static char tx[XENSTORE_PAYLOAD_MAX];

static int path_request(enum xsd_sockmsg_type type, xs_transaction_t t, const char *path, char *out, uint32_t cap) {
  int n = join2(tx, path, 0, 0);
  return n < 0 ? n : xs_request(type, t, tx, (uint32_t)n, out, cap);
}

int xs_read(xs_transaction_t t, const char *path, char *buf, uint32_t cap) {
  return path_request(XS_READ, t, path, buf, cap);
}

int xs_write(xs_transaction_t t, const char *path, const char *value) {
  int n = join2(tx, path, value, 0); /* the value is not NUL-terminated on the wire */
  if (n < 0) return n;
  int rc = xs_request(XS_WRITE, t, tx, (uint32_t)n, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_mkdir(xs_transaction_t t, const char *path) {
  int rc = path_request(XS_MKDIR, t, path, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_rm(xs_transaction_t t, const char *path) {
  int rc = path_request(XS_RM, t, path, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_directory(xs_transaction_t t, const char *path, char *buf, uint32_t cap) {
  int len = path_request(XS_DIRECTORY, t, path, buf, cap);
  if (len < 0) return len;
  if ((uint32_t)len >= cap) return -XEN_E2BIG;
  int count = 0;
  for (int i = 0; i < len; i++)
    if (buf[i] == 0) count++;
  return count;
}

int xs_get_domain_path(domid_t domid, char *buf, uint32_t cap) {
  char num[8];
  snprintf(num, sizeof num, "%u", (unsigned)domid);
  return path_request(XS_GET_DOMAIN_PATH, XBT_NULL, num, buf, cap);
}

int xs_transaction_start(xs_transaction_t *t) {
  char id[16];
  int rc = xs_request(XS_TRANSACTION_START, XBT_NULL, "", 1, id, sizeof id);
  if (rc < 0) return rc;
  uint32_t v = 0;
  for (const char *p = id; *p; p++) {
    if (*p < '0' || *p > '9') return -XEN_EIO;
    v = v * 10 + (uint32_t)(*p - '0');
  }
  *t = v;
  return 0;
}

int xs_transaction_end(xs_transaction_t t, int abort) {
  int rc = xs_request(XS_TRANSACTION_END, t, abort ? "F" : "T", 2, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_set_perms(xs_transaction_t t, const char *path, const char *const *perms, unsigned n) {
  size_t len = strlen(path) + 1;
  if (len > XENSTORE_PAYLOAD_MAX) return -XEN_E2BIG;
  memcpy(tx, path, len);
  for (unsigned i = 0; i < n; i++) {
    size_t l = strlen(perms[i]) + 1;
    if (len + l > XENSTORE_PAYLOAD_MAX) return -XEN_E2BIG;
    memcpy(tx + len, perms[i], l);
    len += l;
  }
  int rc = xs_request(XS_SET_PERMS, t, tx, (uint32_t)len, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_watch(const char *path, const char *token) {
  int n = join2(tx, path, token, 1);
  if (n < 0) return n;
  int rc = xs_request(XS_WATCH, XBT_NULL, tx, (uint32_t)n, 0, 0);
  return rc < 0 ? rc : 0;
}

int xs_unwatch(const char *path, const char *token) {
  int n = join2(tx, path, token, 1);
  if (n < 0) return n;
  int rc = xs_request(XS_UNWATCH, XBT_NULL, tx, (uint32_t)n, 0, 0);
  return rc < 0 ? rc : 0;
}

unsigned xs_watch_pending(void) { return wq_count; }

static void copy_str(char *dst, uint32_t cap, const char *src) {
  if (cap == 0) return;
  uint32_t n = (uint32_t)strlen(src);
  if (n > cap - 1) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = 0;
}

/* Takes queued event `i` (0 = oldest) out of the queue into path/token. */
static void take_event(unsigned i, char *path, uint32_t pcap, char *token, uint32_t tcap) {
  unsigned slot = (wq_head + i) % XS_WATCH_QUEUE;
  const char *d = watch_q[slot].data;
  size_t plen = strlen(d);
  copy_str(path, pcap, d);
  copy_str(token, tcap, d + plen + 1);
  /* Close the gap: shift the later events down by one. */
  for (unsigned k = i; k + 1 < wq_count; k++) {
    unsigned a = (wq_head + k) % XS_WATCH_QUEUE, b = (wq_head + k + 1) % XS_WATCH_QUEUE;
    watch_q[a] = watch_q[b];
  }
  wq_count--;
}

/* Reads messages until at least one event is queued. */
static int wait_event(void) {
  while (wq_count == 0) {
    struct xsd_sockmsg r;
    int rc = read_message(&r);
    if (rc < 0) return rc;
  }
  return 0;
}

int xs_read_watch(char *path, uint32_t path_cap, char *token, uint32_t token_cap) {
  if (intf == 0) return -XEN_ENODEV;
  int rc = wait_event();
  if (rc < 0) return rc;
  take_event(0, path, path_cap, token, token_cap);
  return 0;
}

/* --- xenbus ---------------------------------------------------------------------------------- */

const char *xenbus_strstate(enum xenbus_state s) {
  static const char *const names[] = {"Unknown",   "Initialising", "InitWait", "Initialised", "Connected",
                                      "Closing",   "Closed",       "Reconfiguring", "Reconfigured"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "INVALID";
}

static char path_buf[256];

static int state_path(const char *dir) {
  int n = snprintf(path_buf, sizeof path_buf, "%s/state", dir);
  return n < 0 || (size_t)n >= sizeof path_buf ? -XEN_E2BIG : 0;
}

int xenbus_read_state(const char *dir) {
  char v[16];
  int rc = state_path(dir);
  if (rc < 0) return rc;
  rc = xs_read(XBT_NULL, path_buf, v, sizeof v);
  if (rc == -XEN_ENOENT) return XenbusStateUnknown;
  if (rc < 0) return rc;
  if (v[0] < '0' || v[0] > '9' || v[1] != 0) return XenbusStateUnknown;
  return v[0] - '0';
}

int xenbus_switch_state(const char *dir, enum xenbus_state s) {
  char v[4];
  snprintf(v, sizeof v, "%d", (int)s);
  int rc = state_path(dir);
  if (rc < 0) return rc;
  for (;;) {
    xs_transaction_t t;
    if ((rc = xs_transaction_start(&t)) < 0) return rc;
    /* The directory must still exist: a switch must not recreate a removed device. */
    char probe[4];
    rc = xs_read(t, dir, probe, sizeof probe);
    if (rc >= 0) rc = xs_write(t, path_buf, v);
    if (rc < 0) {
      xs_transaction_end(t, 1);
      return rc;
    }
    rc = xs_transaction_end(t, 0);
    if (rc != -XEN_EAGAIN) return rc;
  }
}

int xenbus_wait_for_state(const char *dir, enum xenbus_state want, const char *token) {
  int rc = state_path(dir);
  if (rc < 0) return rc;
  char watched[256];
  copy_str(watched, sizeof watched, path_buf);
  if ((rc = xs_watch(watched, token)) < 0) return rc;
  int seen = 0; /* the node has existed: its removal means the peer is gone */
  for (;;) {
    /* Wait for an event of our watch (the registration event comes first); others stay queued. */
    int found = -1;
    while (found < 0) {
      for (unsigned i = 0; i < wq_count && found < 0; i++) {
        const char *d = watch_q[(wq_head + i) % XS_WATCH_QUEUE].data;
        if (strcmp(d + strlen(d) + 1, token) == 0) found = (int)i;
      }
      if (found >= 0) break;
      struct xsd_sockmsg r;
      if ((rc = read_message(&r)) < 0) goto out;
    }
    char p[8], tk[8];
    take_event((unsigned)found, p, sizeof p, tk, sizeof tk);
    rc = xenbus_read_state(dir);
    /* A peer's directory we may not read yet (its owner has not shared it) is no state yet. */
    if (rc == -XEN_EACCES) rc = XenbusStateUnknown;
    if (rc < 0) goto out;
    if (rc == (int)want || rc == XenbusStateClosed || (seen && rc == XenbusStateUnknown)) goto out;
    if (rc != XenbusStateUnknown) seen = 1;
  }
out:
  xs_unwatch(watched, token);
  /* Events of our watch that raced with the unwatch are of no use to anyone. */
  for (unsigned i = 0; i < wq_count;) {
    const char *d = watch_q[(wq_head + i) % XS_WATCH_QUEUE].data;
    if (strcmp(d + strlen(d) + 1, token) == 0) {
      char p[8], tk[8];
      take_event(i, p, sizeof p, tk, sizeof tk);
    } else
      i++;
  }
  return rc;
}
