/* Xen console output: console_io(CONSOLEIO_write, count, buf), i.e. a0 = cmd, a1 = count, a2 = buf. */
#include <stdio.h>

#include "xenon.h"

long console_write(const char *buf, size_t len) { return HYPERVISOR_console_io(CONSOLEIO_write, (unsigned)len, buf); }

/* stdout of a native image is the Xen console. */
long __stdout_write(const char *buf, size_t len) { return console_write(buf, len); }
