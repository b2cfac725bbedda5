/* The benchmark kernels. Pure computation: no I/O, no addresses leak into the checksum. */
#include "cpubench.h"

#define LIST_NODES 32
#define MAT_N 6
#define TEXT_LEN 48

struct node {
  struct node *next;
  int32_t value;
  uint32_t index;
};

static struct node pool[LIST_NODES];

static uint16_t crc16_update(uint16_t crc, uint32_t word) {
  /* CRC-16/CCITT over the word's four bytes, bitwise (exercises shifts and branches). */
  for (int b = 0; b < 4; b++) {
    crc ^= (uint16_t)(((word >> (8 * b)) & 0xff) << 8);
    for (int k = 0; k < 8; k++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

static uint32_t next_rand(uint32_t *s) {
  /* xorshift32: needs only shifts and xor; never reaches 0 from a non-zero seed. */
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

/* Builds a list by sorted insertion, reverses it, then folds values with positions. */
static uint32_t bench_list(uint32_t seed) {
  struct node *head = 0;
  for (uint32_t i = 0; i < LIST_NODES; i++) {
    struct node *n = &pool[i];
    n->value = (int32_t)(next_rand(&seed) % 2001) - 1000;
    n->index = i;
    struct node **link = &head;
    while (*link && (*link)->value < n->value) link = &(*link)->next;
    n->next = *link;
    *link = n;
  }
  struct node *prev = 0;
  while (head) {
    struct node *next = head->next;
    head->next = prev;
    prev = head;
    head = next;
  }
  uint32_t acc = 0, pos = 0;
  int32_t last = 0x7fffffff;
  for (struct node *n = prev; n; n = n->next, pos++) {
    acc += (uint32_t)n->value * (pos + 1) + n->index;
    if (n->value > last) acc ^= 0xbad; /* never taken if sorting and reversing worked */
    last = n->value;
  }
  return acc;
}

static uint32_t bench_matrix(uint32_t seed) {
  int32_t a[MAT_N][MAT_N], b[MAT_N][MAT_N], c[MAT_N][MAT_N];
  for (int i = 0; i < MAT_N; i++) {
    for (int j = 0; j < MAT_N; j++) {
      a[i][j] = (int32_t)(next_rand(&seed) & 0xffff) - 0x8000;
      b[i][j] = (i - j) * 3 + (int32_t)(seed & 7);
    }
  }
  for (int i = 0; i < MAT_N; i++) {
    for (int j = 0; j < MAT_N; j++) {
      int32_t sum = 0;
      for (int k = 0; k < MAT_N; k++) sum += a[i][k] * b[k][j];
      c[i][j] = sum;
    }
  }
  uint32_t acc = 0;
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++) acc = (acc << 1 | acc >> 31) ^ (uint32_t)c[i][j];
  return acc;
}

enum state { S_START, S_INT, S_DEC, S_IDENT, S_SIGN, S_BAD, S_COUNT };

/* Classifies a generated text into integers, decimals and identifiers. */
static uint32_t bench_state_machine(uint32_t seed) {
  static const char alphabet[] = "0123456789abcxyz+-. ,";
  char text[TEXT_LEN + 1];
  for (int i = 0; i < TEXT_LEN; i++) text[i] = alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
  text[TEXT_LEN] = 0;
  uint32_t transitions[S_COUNT] = {0};
  enum state s = S_START;
  for (const char *p = text;; p++) {
    char ch = *p;
    enum state n;
    int digit = ch >= '0' && ch <= '9', alpha = ch >= 'a' && ch <= 'z';
    if (ch == 0 || ch == ' ' || ch == ',') {
      n = S_START;
    } else {
      switch (s) {
        case S_START: n = digit ? S_INT : alpha ? S_IDENT : (ch == '+' || ch == '-') ? S_SIGN : S_BAD; break;
        case S_SIGN: n = digit ? S_INT : S_BAD; break;
        case S_INT: n = digit ? S_INT : ch == '.' ? S_DEC : S_BAD; break;
        case S_DEC: n = digit ? S_DEC : S_BAD; break;
        case S_IDENT: n = (digit || alpha) ? S_IDENT : S_BAD; break;
        default: n = S_BAD; break;
      }
    }
    if (n != s) transitions[n]++;
    s = n;
    if (ch == 0) break;
  }
  uint32_t acc = 0;
  for (int i = 0; i < S_COUNT; i++) acc = acc * 33 + transitions[i];
  return acc;
}

uint32_t cpubench_run(uint32_t iterations) {
  uint16_t crc = 0xffff;
  uint32_t seed = 0x9e3779b9u;
  for (uint32_t it = 0; it < iterations; it++) {
    crc = crc16_update(crc, bench_list(seed));
    crc = crc16_update(crc, bench_matrix(seed ^ 0x5a5a5a5au));
    crc = crc16_update(crc, bench_state_machine(seed + it));
    /* Chain: the next iteration's inputs depend on everything computed so far. */
    seed = (seed * 2654435761u + crc + it) | 1;
  }
  return (uint32_t)crc << 16 ^ seed;
}
