/* key=value boot arguments; see include/bootargs.h. */
#include "bootargs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char copy[BOOTARGS_MAX];
static struct {
  const char *key, *value;
} args[BOOTARGS_MAX_KEYS];
static unsigned nargs;

void bootargs_parse(const char *cmdline) {
  nargs = 0;
  size_t n = strlen(cmdline);
  if (n >= sizeof copy) {
    printf("xenon: bootargs longer than %u bytes, truncated\n", (unsigned)sizeof copy - 1);
    n = sizeof copy - 1;
  }
  memcpy(copy, cmdline, n);
  copy[n] = 0;
  /* Tokenise in place: each word's separators become NULs. */
  char *p = copy;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n') *p++ = 0;
    if (!*p) break;
    char *word = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
    if (nargs == BOOTARGS_MAX_KEYS) {
      printf("xenon: more than %u bootargs, ignoring the rest\n", BOOTARGS_MAX_KEYS);
      break;
    }
    char *eq = strchr(word, '=');
    /* strchr may find an '=' of a later word only if this one has none: bound it. */
    if (eq && eq >= p) eq = 0;
    args[nargs].key = word;
    args[nargs].value = "";
    if (eq) {
      *eq = 0;
      args[nargs].value = eq + 1;
    }
    nargs++;
  }
}

const char *bootarg_str(const char *key, const char *def) {
  for (unsigned i = nargs; i-- > 0;)
    if (strcmp(args[i].key, key) == 0) return args[i].value;
  return def;
}

int bootarg_has(const char *key) { return bootarg_str(key, 0) != 0; }

uint32_t bootarg_u32(const char *key, uint32_t def) {
  const char *v = bootarg_str(key, 0);
  if (!v) return def;
  char *end;
  /* Decimal unless 0x-prefixed: a leading zero does not make it octal. */
  unsigned long n = strtoul(v, &end, v[0] == '0' && (v[1] == 'x' || v[1] == 'X') ? 16 : 10);
  if (end == v || *end) {
    printf("xenon: bootarg %s=%s is not a number, using %u\n", key, v, (unsigned)def);
    return def;
  }
  return (uint32_t)n;
}

unsigned long strtoul(const char *s, char **end, int base) {
  unsigned long v = 0;
  while (*s == ' ' || *s == '\t') s++;
  if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    base = 16;
  } else if (base == 0) {
    base = s[0] == '0' && s[1] ? 8 : 10;
  }
  for (;; s++) {
    int d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (*s >= 'a' && *s <= 'z') d = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'Z') d = *s - 'A' + 10;
    else break;
    if (d >= base) break;
    v = v * (unsigned long)base + (unsigned long)d;
  }
  if (end) *end = (char *)s;
  return v;
}
