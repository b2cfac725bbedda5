/*
 * polltest: SCHEDOP_poll on a masked port (how a guest waits for one event without taking upcalls).
 *
 *   bootargs: role=waiter|sender port=<static local port> delay=<sender spin iterations>
 *
 * waiter: masks the port, polls it with a 2 s timeout (the sender's event must wake it, pending,
 * long before), then polls again with a 20 ms timeout and no sender (it must come back after the
 * timeout, nothing pending). sender: spins a while, then sends once.
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"

static long poll_one(evtchn_port_t port, uint64_t timeout_abs_ns) {
  evtchn_port_t ports[1] = {port};
  struct sched_poll p;
  memset(&p, 0, sizeof p);
  p.ports = (xen_guest_handle_t)(uintptr_t)ports;
  p.nr_ports = 1;
  p.timeout = timeout_abs_ns;
  return HYPERVISOR_sched_op(SCHEDOP_poll, &p);
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *role = bootarg_str("role", "");
  evtchn_port_t port = bootarg_u32("port", 0);
  if (strcmp(role, "sender") == 0) {
    volatile uint32_t x = 0;
    for (uint32_t i = 0; i < bootarg_u32("delay", 200000); i++) x = x + i;
    printf("polltest: sender sends\n");
    return evtchn_send(port) == 0 ? 0 : 1;
  }
  /* shared_info mapped, every port masked; interrupts stay off: this domain only polls. */
  if (events_init(vcpu_id) != 0) return 1;
  evtchn_mask(port);
  uint64_t t0 = timer_now_ns();
  long rc = poll_one(port, t0 + 2000000000ull);
  uint64_t t1 = timer_now_ns();
  int pending = evtchn_is_pending(port);
  printf("polltest: first poll rc %ld, pending %d, after %u us\n", rc, pending, (unsigned)((t1 - t0) / 1000));
  if (rc != 0 || !pending || t1 - t0 >= 2000000000ull) return 1;
  evtchn_clear_pending(port);
  rc = poll_one(port, t1 + 20000000ull);
  uint64_t t2 = timer_now_ns();
  printf("polltest: second poll rc %ld, pending %d, timed out after %u us\n", rc, evtchn_is_pending(port),
         (unsigned)((t2 - t1) / 1000));
  if (rc != 0 || evtchn_is_pending(port) || t2 - t1 < 20000000ull) return 1;
  printf("polltest: ok\n");
  return 0;
}
