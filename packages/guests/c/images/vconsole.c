/*
 * vconsole: a console on virtio-console (not CONSOLEIO). Prints a greeting through the device's
 * transmitq, one line through emerg_wr when the device offers it, then echoes host input line by
 * line as "echo: LINE" until a line "quit" (or `lines=N` lines), says "bye" and powers off.
 *
 *   bootargs: lines=<n, default 0: until "quit"> (and the frontend's event_idx=0 indirect_desc=0
 *             virtio_poll=1)
 *
 * Through CONSOLEIO it prints only "vconsole: device at ... cols C rows R ..." at start and
 * "vconsole: done N lines, RX received TX sent" at the end (or "vconsole: FAILED ...").
 */
#include <stdio.h>
#include <string.h>

#include "virtio_console.h"
#include "xenon.h"

static struct vcon con;

static int say(const char *s) { return vcon_write(&con, s, (uint32_t)strlen(s)); }

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t max_lines = bootarg_u32("lines", 0);
  int rc = events_init(vcpu_id);
  if (rc < 0 || (rc = vcon_init(&con, 0)) < 0) {
    printf("vconsole: FAILED device setup (%d)\n", rc);
    return 1;
  }
  irq_enable();
  printf("vconsole: device at %#x backend d%u grants %d cols %u rows %u emerg %d event_idx %d indirect %d\n",
         (unsigned)con.dev.base, (unsigned)con.dev.backend, con.dev.grants, (unsigned)con.cols, (unsigned)con.rows,
         con.emerg, con.dev.event_idx, con.dev.indirect);
  if (con.emerg)
    for (const char *p = "vcon: emergency write\n"; *p; p++) vcon_emerg_write(&con, *p);
  if ((rc = say("vcon: hello through virtio-console\n")) < 0) {
    printf("vconsole: FAILED write (%d)\n", rc);
    return 1;
  }
  char line[256];
  uint32_t len = 0, lines = 0;
  for (;;) {
    char ch;
    long n = vcon_read(&con, &ch, 1, 1);
    if (n < 0) {
      printf("vconsole: FAILED read (%ld, status %#x)\n", n, (unsigned)virtio_status(&con.dev));
      return 1;
    }
    if (ch == '\r') continue;
    if (ch != '\n') {
      if (len < sizeof line - 1) line[len++] = ch;
      continue;
    }
    line[len] = 0;
    lines++;
    if (strcmp(line, "quit") == 0) break;
    char out[sizeof line + 8];
    snprintf(out, sizeof out, "echo: %s\n", line);
    if ((rc = say(out)) < 0) {
      printf("vconsole: FAILED write (%d)\n", rc);
      return 1;
    }
    len = 0;
    if (max_lines && lines >= max_lines) break;
  }
  say("vcon: bye\n");
  printf("vconsole: done %u lines, %u bytes received, %u sent\n", (unsigned)lines, (unsigned)con.rx_bytes,
         (unsigned)con.tx_bytes);
  return 0;
}
