/*
 * pingpong: two domains bounce an event N times over a static interdomain event channel that the
 * host created before boot (so neither side allocates or binds anything).
 *
 *   bootargs: role=ping|pong peer=<domid> port=<local port> rounds=<N>
 *
 * ping sends first and then waits for each reply; pong replies to each event it gets. The
 * protocol is lock-step (at most one event in flight per direction), so coalescing of event edges
 * cannot lose a round. Both print "pingpong: <role> done N rounds" and the elapsed time.
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"

static volatile uint32_t received;

static void on_event(evtchn_port_t port, void *arg) {
  (void)port;
  (void)arg;
  received++;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *role = bootarg_str("role", "");
  uint32_t peer = bootarg_u32("peer", DOMID_INVALID);
  uint32_t port = bootarg_u32("port", 0);
  uint32_t rounds = bootarg_u32("rounds", 1000);
  int ping = strcmp(role, "ping") == 0;
  if (!ping && strcmp(role, "pong") != 0) {
    printf("pingpong: role=ping or role=pong required (got '%s')\n", role);
    return 1;
  }
  if (port == 0 || port >= EVTCHN_2L_NR_CHANNELS) {
    printf("pingpong: port=<local port> required\n");
    return 1;
  }
  printf("pingpong: %s, domain %u, peer %u, port %u, %u rounds\n", role, (unsigned)xen_platform.domid,
         (unsigned)peer, (unsigned)port, (unsigned)rounds);

  int rc = events_init(vcpu_id);
  if (rc < 0) {
    printf("pingpong: events_init failed: %d\n", rc);
    return 1;
  }
  /* The channel is static: check the core really connected it to the peer we were told. */
  struct evtchn_status st;
  rc = evtchn_status(DOMID_SELF, port, &st);
  if (rc < 0 || st.status != EVTCHNSTAT_interdomain || (peer != DOMID_INVALID && st.u.interdomain.dom != peer)) {
    printf("pingpong: port %u is not an interdomain channel to %u (rc %d, status %u, dom %u)\n", (unsigned)port,
           (unsigned)peer, rc, (unsigned)st.status, (unsigned)st.u.interdomain.dom);
    return 1;
  }
  rc = evtchn_bind_handler(port, on_event, 0);
  if (rc < 0) {
    printf("pingpong: cannot unmask port %u: %d\n", (unsigned)port, rc);
    return 1;
  }
  irq_enable();

  uint64_t t0 = timer_ticks();
  uint32_t seen = 0;
  for (uint32_t i = 0; i < rounds; i++) {
    if (ping && (rc = evtchn_send(port)) < 0) {
      printf("pingpong: send failed in round %u: %d\n", (unsigned)i, rc);
      return 1;
    }
    seen = wait_for_change(&received, seen);
    if (!ping && (rc = evtchn_send(port)) < 0) {
      printf("pingpong: reply failed in round %u: %d\n", (unsigned)i, rc);
      return 1;
    }
    if (seen != i + 1) {
      printf("pingpong: round %u saw %u events (edges lost or duplicated)\n", (unsigned)i, (unsigned)seen);
      return 1;
    }
  }
  uint64_t us = timer_ticks_to_us(timer_ticks() - t0);
  irq_disable();
  printf("pingpong: %s done %u rounds\n", role, (unsigned)rounds);
  printf("pingpong: %s elapsed %llu us (%llu us per round, %u upcalls)\n", role, (unsigned long long)us,
         (unsigned long long)(rounds ? us / rounds : 0), (unsigned)evtchn_upcalls);
  return 0;
}
