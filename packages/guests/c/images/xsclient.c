/*
 * xsclient: the XenStore client library over this domain's ring, printing what it sees.
 *
 *   bootargs: mode=demo (default) | front | back | flood | hostile | bench | virtio
 *             peer=<domid> (front/back), seconds=<N> (flood), count=<N> (bench)
 *
 * demo    read/write/mkdir/directory/rm, a transaction, a conflicting transaction redone on
 *         EAGAIN, a watch and its events, and the denials an unprivileged domain gets.
 * front / back  a xenbus handshake between two domains through their data/ directories:
 *         back goes InitWait, front Initialising -> Connected once back is Connected.
 * flood   writes requests into its ring as fast as it can and never reads a reply.
 * hostile puts a req_prod more than a ring ahead of req_cons and waits for the daemon's error.
 * bench   `count` sequential reads; prints the elapsed time.
 * virtio  its first virtio device's nodes as the toolstack wrote them (device/virtio/0): follows
 *         `backend` to the driver domain's directory, prints its type and transport, waits for
 *         the backend to be Connected, and shows it may read but not write there.
 *
 * Every line starts with "xsclient:"; a check that fails prints "xsclient: FAIL ..." and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"
#include "xenstore.h"

static int failures;

#define CHECK(cond, ...)                \
  do {                                  \
    if (!(cond)) {                      \
      printf("xsclient: FAIL ");        \
      printf(__VA_ARGS__);              \
      printf("\n");                     \
      failures++;                       \
    }                                   \
  } while (0)

static char buf[1024];
static char home[64];

static const char *errname(int rc) {
  switch (-rc) {
    case XEN_ENOENT:
      return "ENOENT";
    case XEN_EACCES:
      return "EACCES";
    case XEN_ENOSPC:
      return "ENOSPC";
    case XEN_EAGAIN:
      return "EAGAIN";
    case XEN_EINVAL:
      return "EINVAL";
    case XEN_E2BIG:
      return "E2BIG";
    case XEN_EEXIST:
      return "EEXIST";
    case XEN_EIO:
      return "EIO";
    default:
      return rc >= 0 ? "OK" : "E?";
  }
}

static void demo(void) {
  int rc = xs_read(XBT_NULL, "name", buf, sizeof buf);
  CHECK(rc > 0, "read name: %d", rc);
  printf("xsclient: name = %s\n", buf);

  rc = xs_write(XBT_NULL, "data/greeting", "hello from the ring");
  CHECK(rc == 0, "write: %d", rc);
  rc = xs_read(XBT_NULL, "data/greeting", buf, sizeof buf);
  printf("xsclient: read data/greeting = %s (%d)\n", buf, rc);
  CHECK(rc == 19 && strcmp(buf, "hello from the ring") == 0, "read back");

  CHECK(xs_mkdir(XBT_NULL, "data/dir") == 0, "mkdir");
  CHECK(xs_write(XBT_NULL, "data/dir/a", "1") == 0, "write a");
  CHECK(xs_write(XBT_NULL, "data/dir/b", "2") == 0, "write b");
  rc = xs_directory(XBT_NULL, "data/dir", buf, sizeof buf);
  printf("xsclient: directory data/dir: %d entries:", rc);
  for (int i = 0, off = 0; i < rc; i++, off += (int)strlen(buf + off) + 1) printf(" %s", buf + off);
  printf("\n");
  CHECK(rc == 2, "directory count");
  CHECK(xs_rm(XBT_NULL, "data/dir") == 0, "rm");
  rc = xs_read(XBT_NULL, "data/dir/a", buf, sizeof buf);
  printf("xsclient: after rm, read data/dir/a: %s\n", errname(rc));
  CHECK(rc == -XEN_ENOENT, "rm removed the subtree");

  /* A transaction: invisible until committed. */
  xs_transaction_t t;
  CHECK(xs_transaction_start(&t) == 0, "transaction start");
  CHECK(xs_write(t, "data/tx", "inside") == 0, "write in tx");
  rc = xs_read(XBT_NULL, "data/tx", buf, sizeof buf);
  CHECK(rc == -XEN_ENOENT, "uncommitted write invisible: %d", rc);
  CHECK(xs_transaction_end(t, 0) == 0, "commit");
  rc = xs_read(XBT_NULL, "data/tx", buf, sizeof buf);
  printf("xsclient: transaction committed: data/tx = %s\n", buf);

  /* A conflict: the first attempt is EAGAIN, the redo commits. */
  int attempts = 0;
  for (;;) {
    attempts++;
    CHECK(xs_transaction_start(&t) == 0, "tx start");
    xs_read(t, "data/counter", buf, sizeof buf);
    if (attempts == 1) xs_write(XBT_NULL, "data/counter", "other"); /* someone else writes meanwhile */
    xs_write(t, "data/counter", "mine");
    rc = xs_transaction_end(t, 0);
    if (rc != -XEN_EAGAIN) break;
    printf("xsclient: transaction conflict: EAGAIN, retrying\n");
  }
  xs_read(XBT_NULL, "data/counter", buf, sizeof buf);
  printf("xsclient: transaction done after %d attempts: data/counter = %s\n", attempts, buf);
  CHECK(rc == 0 && attempts == 2 && strcmp(buf, "mine") == 0, "retry on EAGAIN");

  /* Watches: the registration event, then one per change below the path. */
  char path[128], token[32];
  CHECK(xs_watch("data/w", "tok") == 0, "watch");
  CHECK(xs_read_watch(path, sizeof path, token, sizeof token) == 0, "registration event");
  printf("xsclient: watch event %s %s\n", path, token);
  CHECK(xs_write(XBT_NULL, "data/w/x", "1") == 0, "write under watch");
  CHECK(xs_read_watch(path, sizeof path, token, sizeof token) == 0, "change event");
  printf("xsclient: watch event %s %s\n", path, token);
  CHECK(strcmp(path, "data/w/x") == 0 && strcmp(token, "tok") == 0, "event path");
  CHECK(xs_unwatch("data/w", "tok") == 0, "unwatch");
  xs_write(XBT_NULL, "data/w/y", "2");
  CHECK(xs_watch_pending() == 0, "no events after unwatch (%u)", xs_watch_pending());

  /* A reconnection forgets our watches. */
  CHECK(xs_watch("data/r", "rtok") == 0, "watch before reconnect");
  rc = xs_reconnect();
  printf("xsclient: reconnect: %s\n", errname(rc));
  CHECK(rc == 0, "reconnect");
  CHECK(xs_write(XBT_NULL, "data/r/x", "1") == 0, "write after reconnect");
  rc = xs_read(XBT_NULL, "data/r/x", buf, sizeof buf);
  CHECK(rc == 1 && xs_watch_pending() == 0, "served afresh, old watch gone (%d, %u)", rc, xs_watch_pending());

  /* What an unprivileged domain may not do. */
  rc = xs_write(XBT_NULL, "/local/domain/0/intruder", "x");
  printf("xsclient: write /local/domain/0/intruder: %s\n", errname(rc));
  CHECK(rc == -XEN_EACCES, "dom0's home is not ours");
  rc = xs_write(XBT_NULL, "name", "forged");
  printf("xsclient: write name: %s\n", errname(rc));
  CHECK(rc == -XEN_EACCES, "our name is the toolstack's");
  static char big[2100];
  memset(big, 'x', 2049);
  big[2049] = 0;
  rc = xs_write(XBT_NULL, "data/big", big);
  printf("xsclient: write 2049 bytes: %s\n", errname(rc));
  CHECK(rc == -XEN_ENOSPC, "node size quota");
  rc = xs_request(XS_INTRODUCE, XBT_NULL, "9\0" "1\0" "1", 6, 0, 0);
  printf("xsclient: introduce: %s\n", errname(rc));
  CHECK(rc == -XEN_EACCES, "privileged op");
}

static void handshake(int front, uint32_t peer) {
  char mine[96], theirs[96];
  snprintf(mine, sizeof mine, "%s/data/%s", home, front ? "front" : "back");
  snprintf(theirs, sizeof theirs, "/local/domain/%u/data/%s", (unsigned)peer, front ? "back" : "front");
  char reader[16];
  snprintf(reader, sizeof reader, "r%u", (unsigned)peer);
  char owner[16];
  snprintf(owner, sizeof owner, "n%u", (unsigned)xen_platform.domid);
  const char *perms[] = {owner, reader};
  CHECK(xs_mkdir(XBT_NULL, mine) == 0, "mkdir %s", mine);
  CHECK(xs_set_perms(XBT_NULL, mine, perms, 2) == 0, "share %s", mine);
  int rc;
  if (front) {
    CHECK(xenbus_switch_state(mine, XenbusStateInitialising) == 0, "front Initialising");
    printf("xsclient: front: Initialising, waiting for the backend\n");
    rc = xenbus_wait_for_state(theirs, XenbusStateConnected, "peer");
    printf("xsclient: front: backend is %s\n", rc >= 0 ? xenbus_strstate(rc) : errname(rc));
    CHECK(rc == XenbusStateConnected, "backend connected");
    CHECK(xenbus_switch_state(mine, XenbusStateConnected) == 0, "front Connected");
    printf("xsclient: front: Connected\n");
    /* Stay until the backend has seen us and closed (its directory may vanish as it exits). */
    rc = xenbus_wait_for_state(theirs, XenbusStateClosed, "peer");
    printf("xsclient: front: backend is %s\n", rc >= 0 ? xenbus_strstate(rc) : errname(rc));
    CHECK(rc == XenbusStateClosed || rc == XenbusStateUnknown, "backend closed");
    CHECK(xenbus_read_state(mine) == XenbusStateConnected, "own state");
    return;
  } else {
    CHECK(xenbus_switch_state(mine, XenbusStateInitWait) == 0, "back InitWait");
    printf("xsclient: back: InitWait, waiting for the frontend\n");
    rc = xenbus_wait_for_state(theirs, XenbusStateInitialising, "peer");
    CHECK(rc == XenbusStateInitialising, "frontend initialising (%d)", rc);
    CHECK(xenbus_switch_state(mine, XenbusStateConnected) == 0, "back Connected");
    printf("xsclient: back: Connected, waiting for the frontend\n");
    rc = xenbus_wait_for_state(theirs, XenbusStateConnected, "peer");
    printf("xsclient: back: frontend is %s\n", rc >= 0 ? xenbus_strstate(rc) : errname(rc));
    CHECK(rc == XenbusStateConnected, "frontend connected");
    CHECK(xenbus_read_state(mine) == XenbusStateConnected, "own state");
    CHECK(xenbus_switch_state(mine, XenbusStateClosed) == 0, "back Closed");
    printf("xsclient: back: Closed\n");
  }
}

/* Raw producer: well-formed WRITE requests, never a look at rsp. */
static void flood(uint32_t seconds) {
  volatile struct xenstore_domain_interface *r = xs_ring();
  static uint8_t msg[16 + 64];
  const char *payload = "data/flood\0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  uint32_t plen = 11 + 40;
  struct xsd_sockmsg h = {.type = XS_WRITE, .req_id = 0, .tx_id = 0, .len = plen};
  uint64_t end = timer_ticks() + (uint64_t)seconds * timer_hz();
  uint32_t sent = 0, off = 0;
  while (timer_ticks() < end) {
    if (off == 0) {
      h.req_id = ++sent;
      memcpy(msg, &h, 16);
      memcpy(msg + 16, payload, plen);
    }
    uint32_t total = 16 + plen;
    XENSTORE_RING_IDX prod = r->req_prod, cons = r->req_cons;
    uint32_t room = XENSTORE_RING_SIZE - (prod - cons);
    uint32_t n = 0;
    while (n < room && off < total) r->req[MASK_XENSTORE_IDX(prod + n++)] = (char)msg[off++];
    __asm__ volatile("fence rw, rw" ::: "memory");
    r->req_prod = prod + n;
    if (n > 0) evtchn_send(xs_port());
    if (off == total) off = 0;
    if (n == 0) xen_yield();
  }
  printf("xsclient: flood: %u requests written, ring error %u\n", (unsigned)sent, (unsigned)r->error);
}

static void hostile(void) {
  volatile struct xenstore_domain_interface *r = xs_ring();
  r->req_prod = r->req_cons + XENSTORE_RING_SIZE + 5;
  evtchn_send(xs_port());
  uint64_t end = timer_ticks() + 5ull * timer_hz();
  while (r->error == 0 && timer_ticks() < end) xen_yield();
  printf("xsclient: hostile: ring error %u\n", (unsigned)r->error);
  CHECK(r->error == XENSTORE_ERROR_RINGIDX, "the daemon flagged the bad index");
  int rc = xs_read(XBT_NULL, "name", buf, sizeof buf);
  printf("xsclient: hostile: read after the error: %s\n", errname(rc));
  CHECK(rc == -XEN_EIO, "the client sees the broken ring");
}

static void bench(uint32_t count) {
  uint64_t t0 = timer_ticks();
  for (uint32_t i = 0; i < count; i++) {
    int rc = xs_read(XBT_NULL, "name", buf, sizeof buf);
    if (rc < 0) {
      CHECK(0, "bench read %u: %d", (unsigned)i, rc);
      return;
    }
  }
  uint64_t us = timer_ticks_to_us(timer_ticks() - t0);
  printf("xsclient: bench: %u reads in %llu us\n", (unsigned)count, (unsigned long long)us);
}

static void virtio(void) {
  char be[128], path[160];
  int rc = xs_read(XBT_NULL, "device/virtio/0/backend", be, sizeof be);
  CHECK(rc > 0 && rc < (int)sizeof be, "read device/virtio/0/backend: %s", errname(rc));
  if (rc <= 0) return;
  printf("xsclient: virtio: backend %s\n", be);
  snprintf(path, sizeof path, "%s/type", be);
  rc = xs_read(XBT_NULL, path, buf, sizeof buf);
  CHECK(rc > 0, "read %s: %s", path, errname(rc));
  printf("xsclient: virtio: type %s\n", buf);
  snprintf(path, sizeof path, "%s/transport", be);
  rc = xs_read(XBT_NULL, path, buf, sizeof buf);
  printf("xsclient: virtio: transport %s\n", rc > 0 ? buf : errname(rc));
  rc = xenbus_wait_for_state(be, XenbusStateConnected, "be");
  printf("xsclient: virtio: backend is %s\n", rc >= 0 ? xenbus_strstate(rc) : errname(rc));
  CHECK(rc == XenbusStateConnected, "backend connected");
  snprintf(path, sizeof path, "%s/state", be);
  rc = xs_write(XBT_NULL, path, "6");
  printf("xsclient: virtio: write backend state: %s\n", errname(rc));
  CHECK(rc == -XEN_EACCES, "the backend's directory is read-only to the frontend");
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *mode = bootarg_str("mode", "demo");
  int rc = events_init(vcpu_id);
  if (rc < 0) {
    printf("xsclient: FAIL events_init %d\n", rc);
    return 1;
  }
  irq_enable();
  rc = xs_init();
  if (rc < 0) {
    printf("xsclient: FAIL xs_init %d (no XenStore ring for this domain?)\n", rc);
    return 1;
  }
  rc = xs_get_domain_path(xen_platform.domid, home, sizeof home);
  printf("xsclient: %s: domain %u, home %s, port %u\n", mode, (unsigned)xen_platform.domid, home,
         (unsigned)xs_port());
  CHECK(rc > 0, "get_domain_path %d", rc);
  if (strcmp(mode, "demo") == 0)
    demo();
  else if (strcmp(mode, "front") == 0 || strcmp(mode, "back") == 0)
    handshake(mode[0] == 'f', bootarg_u32("peer", DOMID_INVALID));
  else if (strcmp(mode, "flood") == 0)
    flood(bootarg_u32("seconds", 2));
  else if (strcmp(mode, "hostile") == 0)
    hostile();
  else if (strcmp(mode, "bench") == 0)
    bench(bootarg_u32("count", 1000));
  else if (strcmp(mode, "virtio") == 0)
    virtio();
  else {
    printf("xsclient: FAIL unknown mode '%s'\n", mode);
    return 1;
  }
  printf("xsclient: %s %s\n", mode, failures ? "FAILED" : "done");
  return failures ? 1 : 0;
}
