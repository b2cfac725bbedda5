/*
 * Whole-program workloads with known answers: quicksort, CRC-32, a prime sieve, string
 * routines, 64-bit arithmetic through the runtime's division helpers, and snprintf over many
 * formats (which also pins down the shared formatting core's behaviour).
 */
#include <limits.h>
#include <string.h>

#include "common.h"

/* The helpers are called directly for the edge cases whose C operators would be undefined. */
int64_t __divdi3(int64_t a, int64_t b);
int64_t __moddi3(int64_t a, int64_t b);
uint64_t __udivdi3(uint64_t a, uint64_t b);
uint64_t __umoddi3(uint64_t a, uint64_t b);

static uint32_t lcg_state = 12345;
static uint32_t lcg(void) {
  lcg_state = lcg_state * 1103515245u + 12345u;
  return lcg_state >> 1;
}

static void quicksort(int32_t *a, int lo, int hi) {
  while (lo < hi) {
    int32_t pivot = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        int32_t t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    /* Recurse into the smaller half, loop on the larger: bounded stack depth. */
    if (j - lo < hi - i) {
      quicksort(a, lo, j);
      lo = i;
    } else {
      quicksort(a, i, hi);
      hi = j;
    }
  }
}

static void test_sort(void) {
  static int32_t a[500];
  for (unsigned i = 0; i < ARRAY_LEN(a); i++) a[i] = (int32_t)(lcg() ^ (i & 1 ? 0x80000000u : 0)) / 3;
  quicksort(a, 0, (int)ARRAY_LEN(a) - 1);
  int sorted = 1;
  uint32_t h = 0;
  for (unsigned i = 0; i < ARRAY_LEN(a); i++) {
    if (i && a[i - 1] > a[i]) sorted = 0;
    h = h * 31 + (uint32_t)a[i];
  }
  printf("quicksort n=%u sorted %d min %d median %d max %d hash %08x\n", (unsigned)ARRAY_LEN(a), sorted, a[0],
         a[ARRAY_LEN(a) / 2], a[ARRAY_LEN(a) - 1], mix(h));
}

static uint32_t crc_table[256];

static void crc32_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32(const void *data, size_t n) {
  const uint8_t *p = data;
  uint32_t c = 0xffffffffu;
  while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void test_crc(void) {
  crc32_init();
  const char *fox = "The quick brown fox jumps over the lazy dog";
  static uint8_t block[1024];
  for (unsigned i = 0; i < sizeof block; i++) block[i] = (uint8_t)(i ^ (i >> 3));
  printf("crc32 \"123456789\" %08x (want cbf43926) fox %08x (want 414fa339) block %08x\n", mix(crc32("123456789", 9)),
         mix(crc32(fox, strlen(fox))), mix(crc32(block, sizeof block)));
}

static void test_sieve(void) {
  enum { N = 20000 };
  static uint8_t composite[N];
  unsigned count = 0, last = 0;
  uint32_t sum = 0;
  for (unsigned i = 2; i < N; i++) {
    if (composite[i]) continue;
    count++;
    last = i;
    sum += i;
    for (unsigned j = i * i; j < N; j += i) composite[j] = 1;
  }
  printf("sieve below %u: %u primes (want 2262), last %u, sum %u\n", N, mix(count), mix(last), mix(sum));
}

static void reverse(char *s) {
  for (size_t i = 0, j = strlen(s); i + 1 < j; i++, j--) {
    char t = s[i];
    s[i] = s[j - 1];
    s[j - 1] = t;
  }
}

static void test_strings(void) {
  char buf[64];
  strcpy(buf, "differential");
  reverse(buf);
  const char *hay = "xenon:guest:rv32imac";
  const char *colon = strchr(hay, ':');
  printf("strings reversed '%s' len %u strchr ':' at %d, 'z' %s, NUL at %d\n", buf, (unsigned)strlen(buf),
         (int)(colon - hay), strchr(hay, 'z') ? "found" : "absent", (int)(strchr(hay, 0) - hay));
  printf("strcmp %d %d %d strncmp %d %d memcmp %d\n", strcmp("abc", "abc") == 0, strcmp("abc", "abd") < 0,
         strcmp("b", "abc") > 0, strncmp("xenon1", "xenon2", 5) == 0, strncmp("xen", "xenon", 5) < 0,
         memcmp("\xff", "\x01", 1) > 0);
  /* A tiny tokenizer: words and their lengths. */
  const char *text = "  grant tables,event channels;  xenstore ";
  unsigned words = 0, letters = 0;
  for (const char *p = text; *p;) {
    while (*p == ' ' || *p == ',' || *p == ';') p++;
    if (!*p) break;
    words++;
    while (*p && *p != ' ' && *p != ',' && *p != ';') p++, letters++;
  }
  printf("tokenizer words %u letters %u\n", mix(words), mix(letters));
}

static void test_int64(void) {
  uint64_t fact = 1;
  for (unsigned i = 2; i <= 20; i++) fact *= i;
  volatile uint64_t big = 0xfedcba9876543210ULL, small = 0x123456789ULL, tiny = 10;
  printf("20! = %llu\n", (unsigned long long)fact);
  printf("u64 %llx / %llx = %llx rem %llx; / 10 = %llu rem %llu\n", (unsigned long long)big,
         (unsigned long long)small, (unsigned long long)(big / small), (unsigned long long)(big % small),
         (unsigned long long)(big / tiny), (unsigned long long)(big % tiny));
  volatile int64_t sa = -1234567890123456789LL, sb = 987654321LL;
  printf("s64 %lld / %lld = %lld rem %lld; neg divisor %lld rem %lld\n", (long long)sa, (long long)sb,
         (long long)(sa / sb), (long long)(sa % sb), (long long)(-sa / -sb), (long long)(-sa % -sb));
  printf("s64 edge: MIN/-1 %llx MIN%%-1 %lld x/0 %lld x%%0 %lld u/0 %llx u%%0 %llu\n",
         (unsigned long long)__divdi3(LLONG_MIN, -1), (long long)__moddi3(LLONG_MIN, -1),
         (long long)__divdi3(77, 0), (long long)__moddi3(-77, 0), (unsigned long long)__udivdi3(77, 0),
         (unsigned long long)__umoddi3(77, 0));
  /* 32x32->64 products (mulhu/mul) and 64-bit shifts across the word boundary. */
  volatile uint32_t x = 0xfffffffbu, y = 0xfffffff1u;
  volatile int32_t sx = INT_MIN, sy = -3;
  volatile unsigned sh = 33;
  uint64_t p = (uint64_t)x * y;
  int64_t sp = (int64_t)sx * sy;
  printf("u32*u32 %016llx s32*s32 %lld shl33 %016llx shr33 %016llx sar33 %016llx\n", (unsigned long long)p,
         (long long)sp, (unsigned long long)(p << sh), (unsigned long long)(p >> sh),
         (unsigned long long)((int64_t)0x8000000000000000ULL >> sh));
  uint64_t a = 0, b = 1;
  for (int i = 0; i < 90; i++) {
    uint64_t t = a + b;
    a = b;
    b = t;
  }
  uint64_t g1 = 1071 * 1000003ULL, g2 = 462 * 1000003ULL;
  while (g2) {
    uint64_t t = g1 % g2;
    g1 = g2;
    g2 = t;
  }
  printf("fib(90) %llu gcd %llu\n", (unsigned long long)a, (unsigned long long)g1);
  mix((uint32_t)fact);
  mix((uint32_t)(big / small));
  mix((uint32_t)(sa / sb));
  mix((uint32_t)a);
  mix((uint32_t)g1);
}

static void test_snprintf(void) {
  char buf[96];
  struct {
    const char *fmt;
    int kind; /* 0 int, 1 unsigned, 2 long long, 3 string, 4 char */
    long long v;
    const char *s;
  } cases[] = {
      {"[%d]", 0, 0, 0},           {"[%d]", 0, -1, 0},          {"[%i]", 0, INT_MIN, 0},
      {"[%d]", 0, INT_MAX, 0},     {"[%5d]", 0, 42, 0},         {"[%-5d]", 0, 42, 0},
      {"[%05d]", 0, -42, 0},       {"[%+d]", 0, 7, 0},          {"[% d]", 0, 7, 0},
      {"[%.3d]", 0, 7, 0},         {"[%8.3d]", 0, -7, 0},       {"[%.0d]", 0, 0, 0},
      {"[%u]", 1, 4294967295LL, 0}, {"[%x]", 1, 0xdeadbeefLL, 0}, {"[%X]", 1, 0xdeadbeefLL, 0},
      {"[%#x]", 1, 255, 0},        {"[%#o]", 1, 8, 0},          {"[%o]", 1, 0, 0},
      {"[%08X]", 1, 0xabcLL, 0},   {"[%-8x|]", 1, 0xabcLL, 0},  {"[%lld]", 2, LLONG_MIN, 0},
      {"[%lld]", 2, LLONG_MAX, 0}, {"[%llx]", 2, -1, 0},        {"[%llu]", 2, 10000000000LL, 0},
      {"[%020llo]", 2, 01234567012345670LL, 0},                 {"[%s]", 3, 0, "xenon"},
      {"[%8s]", 3, 0, "abc"},      {"[%-8s]", 3, 0, "abc"},     {"[%.2s]", 3, 0, "abcdef"},
      {"[%s]", 3, 0, 0},           {"[%c%c]", 4, 'o', 0},       {"[%3c]", 4, 'z', 0},
      {"[%%]", 0, 0, 0},           {"[%hhd]", 0, 0x1ff, 0},     {"[%hu]", 0, 0x12345, 0},
      {"[%ld]", 0, -100000, 0},    {"[%zu]", 1, 12345, 0},      {"[%*d]", 5, 4, 0},
  };
  for (unsigned i = 0; i < ARRAY_LEN(cases); i++) {
    int n;
    switch (cases[i].kind) {
      case 0: n = snprintf(buf, sizeof buf, cases[i].fmt, (int)cases[i].v); break;
      case 1: n = snprintf(buf, sizeof buf, cases[i].fmt, (unsigned)cases[i].v); break;
      case 2: n = snprintf(buf, sizeof buf, cases[i].fmt, cases[i].v); break;
      case 3: n = snprintf(buf, sizeof buf, cases[i].fmt, cases[i].s); break;
      case 4: n = snprintf(buf, sizeof buf, cases[i].fmt, (int)cases[i].v, (int)cases[i].v + 1); break;
      default: n = snprintf(buf, sizeof buf, cases[i].fmt, (int)cases[i].v, -31); break;
    }
    printf("fmt %-10s -> %s (%d)\n", cases[i].fmt, buf, n);
    mix(crc32(buf, strlen(buf)));
  }
  /* Truncation: the return value is the full length; the buffer always ends in NUL. */
  char small[8];
  int n = snprintf(small, sizeof small, "%s-%d", "truncated", 12345);
  int z = snprintf(0, 0, "%08x", 1u);
  printf("truncation '%s' (%d) size0 %d %p\n", small, n, z, (void *)0x1000);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  test_sort();
  test_crc();
  test_sieve();
  test_strings();
  test_int64();
  test_snprintf();
  print_hash("algo");
  return 0;
}
