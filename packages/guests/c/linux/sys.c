/* Linux syscall wrappers and the Linux output sinks for the shared printf core. */
#include "linux.h"

#include <stdio.h>

#include "format.h"

long sys_write(int fd, const void *buf, size_t len) { return linux_syscall3(SYS_write, fd, (long)buf, (long)len); }

_Noreturn void sys_exit(int status) {
  linux_syscall3(SYS_exit, status, 0, 0);
  for (;;) {
  }
}

_Noreturn void sys_exit_group(int status) {
  linux_syscall3(SYS_exit_group, status, 0, 0);
  for (;;) {
  }
}

/* write(2) may be partial; loop until everything is out or an error occurs. */
static long write_all(int fd, const char *buf, size_t len) {
  while (len) {
    long n = sys_write(fd, buf, len);
    if (n <= 0) return n < 0 ? n : -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* stdout of a Linux program is fd 1. */
long __stdout_write(const char *buf, size_t len) { return write_all(1, buf, len); }

struct fd_out {
  int fd;
  size_t len;
  char buf[128];
};

static void fd_sink(void *ctx, const char *s, size_t n) {
  struct fd_out *o = ctx;
  for (size_t i = 0; i < n; i++) {
    if (o->len == sizeof o->buf) {
      write_all(o->fd, o->buf, o->len);
      o->len = 0;
    }
    o->buf[o->len++] = s[i];
  }
}

int dprintf(int fd, const char *fmt, ...) {
  /* Keep fd 1 ordered with buffered printf output. */
  if (fd == 1) stdout_flush();
  struct fd_out o = {.fd = fd, .len = 0};
  va_list ap;
  va_start(ap, fmt);
  int n = fmt_vformat(fd_sink, &o, fmt, ap);
  va_end(ap);
  if (o.len) write_all(fd, o.buf, o.len);
  return n;
}
