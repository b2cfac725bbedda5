/*
 * XenStore client for a Xenon guest, over the domain's ring page and event channel (what Linux's
 * xenbus_xs.c and libxenstore do, for one vCPU): the toolstack put the page at
 * HVM_PARAM_STORE_PFN and left HVM_PARAM_STORE_EVTCHN unbound towards the XenStore domain.
 *
 * Synchronous: each call writes one request (xsd_sockmsg + payload, in pieces as the ring has
 * room), notifies, and sleeps on the port until the whole reply is in. Watch events that arrive
 * meanwhile are queued (XS_WATCH_QUEUE events; when full the oldest is dropped and counted);
 * xs_read_watch takes them. Call events_init and irq_enable before xs_init.
 *
 * Results: >= 0 on success, or a negative errno: the XenStore error names map to Xen's numbers
 * (-XEN_ENOENT, -XEN_EACCES, -XEN_EAGAIN, ...); -XEN_EIO when the daemon gave up on the ring
 * (the page's `error` field is set) or sent something malformed; -XEN_ENODEV before xs_init.
 * Paths are absolute or relative to /local/domain/<our domid>.
 */
#ifndef XENON_XENSTORE_H
#define XENON_XENSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "xen.h"

/* Message types (io/xs_wire.h, Xen 4.17). */
enum xsd_sockmsg_type {
  XS_CONTROL = 0,
  XS_DIRECTORY = 1,
  XS_READ = 2,
  XS_GET_PERMS = 3,
  XS_WATCH = 4,
  XS_UNWATCH = 5,
  XS_TRANSACTION_START = 6,
  XS_TRANSACTION_END = 7,
  XS_INTRODUCE = 8,
  XS_RELEASE = 9,
  XS_GET_DOMAIN_PATH = 10,
  XS_WRITE = 11,
  XS_MKDIR = 12,
  XS_RM = 13,
  XS_SET_PERMS = 14,
  XS_WATCH_EVENT = 15,
  XS_ERROR = 16,
  XS_IS_DOMAIN_INTRODUCED = 17,
  XS_RESUME = 18,
  XS_SET_TARGET = 19,
  XS_RESET_WATCHES = 21,
  XS_DIRECTORY_PART = 22,
};

#ifndef XEN_EIO
#define XEN_EIO 5
#endif

typedef uint32_t xs_transaction_t;
#define XBT_NULL 0u

#define XS_WATCH_QUEUE 16
#define XS_WATCH_EVENT_MAX 256 /* path + token bytes kept per queued event */

/* Reads the HVM params, binds the port. 0, -XEN_ENODEV (no XenStore for this domain), or -errno. */
int xs_init(void);
/* Asks the daemon for a fresh connection (XENSTORE_RECONNECT), as after kexec: our watches,
 * transactions and anything in flight are dropped, queued watch events too. 0, -XEN_EOPNOTSUPP
 * (the server does not offer it), or -XEN_EIO. */
int xs_reconnect(void);
/* Our port and page (for tests and diagnostics). */
evtchn_port_t xs_port(void);
volatile struct xenstore_domain_interface *xs_ring(void);

/* One raw request: `payload` of `len` bytes; the reply payload goes to `out` (at most `cap`
 * bytes copied, NUL-terminated when room). Returns the reply's length, or -errno. */
int xs_request(enum xsd_sockmsg_type type, xs_transaction_t t, const void *payload, uint32_t len, char *out,
               uint32_t cap);

/* The value at `path` into buf (NUL-terminated, truncated to cap - 1); returns its full length. */
int xs_read(xs_transaction_t t, const char *path, char *buf, uint32_t cap);
int xs_write(xs_transaction_t t, const char *path, const char *value);
int xs_mkdir(xs_transaction_t t, const char *path);
int xs_rm(xs_transaction_t t, const char *path);
/* Children of `path` as consecutive NUL-terminated names in buf; returns their count. -XEN_E2BIG
 * when they do not fit in cap. */
int xs_directory(xs_transaction_t t, const char *path, char *buf, uint32_t cap);
/* Sets the ACL: perms[0] is the owner with the default ("n1", "r0", ...), then per-domain entries. */
int xs_set_perms(xs_transaction_t t, const char *path, const char *const *perms, unsigned n);
/* A domain's home, "/local/domain/<id>". */
int xs_get_domain_path(domid_t domid, char *buf, uint32_t cap);

int xs_transaction_start(xs_transaction_t *t);
/* Commits (abort = 0) or discards; -XEN_EAGAIN when another change conflicted: redo it all. */
int xs_transaction_end(xs_transaction_t t, int abort);

/* Registers a watch; its first event (path = the watched path) is queued at once. */
int xs_watch(const char *path, const char *token);
int xs_unwatch(const char *path, const char *token);
/* Sleeps until a watch event is queued, then copies its path and token. 0 or -errno. */
int xs_read_watch(char *path, uint32_t path_cap, char *token, uint32_t token_cap);
/* Events queued now (without waiting), and events dropped because the queue was full. */
unsigned xs_watch_pending(void);
extern uint32_t xs_watch_dropped;

/* --- xenbus state machine (io/xenbus.h) ---------------------------------------------------- */

enum xenbus_state {
  XenbusStateUnknown = 0,
  XenbusStateInitialising = 1,
  XenbusStateInitWait = 2,
  XenbusStateInitialised = 3,
  XenbusStateConnected = 4,
  XenbusStateClosing = 5,
  XenbusStateClosed = 6,
  XenbusStateReconfiguring = 7,
  XenbusStateReconfigured = 8,
};

const char *xenbus_strstate(enum xenbus_state s);
/* The state in <dir>/state (XenbusStateUnknown when absent or not a number), or -errno. */
int xenbus_read_state(const char *dir);
/* Writes <dir>/state in a transaction that first checks <dir> exists, retrying on EAGAIN (as
 * Linux's xenbus_switch_state). 0 or -errno (-XEN_ENOENT: the device directory is gone). */
int xenbus_switch_state(const char *dir, enum xenbus_state s);
/* Watches <dir>/state until it reads `want` or Closed, or vanishes after having been seen
 * (the peer is gone: XenbusStateUnknown); returns that state or -errno. A state we may not read
 * yet (EACCES) counts as not there yet. Uses `token` for its watch and removes it before returning; events
 * for other watches stay queued. */
int xenbus_wait_for_state(const char *dir, enum xenbus_state want, const char *token);

#endif
