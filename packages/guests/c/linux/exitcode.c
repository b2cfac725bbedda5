/* Exit status and fd plumbing: stdout and stderr output, then exit_group(42) via main's return. */
#include "common.h"

int main(int argc, char **argv) {
  printf("exitcode: stdout line, argc=%d argv[0] set: %s\n", argc, argc > 0 && argv[0] ? "yes" : "no");
  dprintf(2, "exitcode: stderr line %d\n", 2);
  printf("exitcode: returning %d\n", 42);
  return 42;
}
