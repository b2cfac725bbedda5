/*
 * First-fit heap. The arena is a sequence of blocks, each an 8-byte header {size, tag} followed
 * by its payload; size counts the header and is a multiple of 8, so every payload is 8-aligned and
 * the next header is at block + size. Invariants: blocks tile [heap_lo, heap_hi) exactly; tag is
 * TAG_FREE or TAG_USED (free() refuses anything else). Adjacent free blocks are merged lazily,
 * while malloc walks, and eagerly with the following block in free().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR 8u
#define MIN_BLOCK 16u
#define TAG_FREE 0xf4ee0000u
#define TAG_USED 0xa110c8edu

struct block {
  uint32_t size;
  uint32_t tag;
};

static uint8_t *heap_lo, *heap_hi;

static struct block *at(uint8_t *p) { return (struct block *)p; }

void heap_init(void *start, void *end) {
  uintptr_t lo = ((uintptr_t)start + 7) & ~(uintptr_t)7;
  uintptr_t hi = (uintptr_t)end & ~(uintptr_t)7;
  if (hi <= lo || hi - lo < MIN_BLOCK) {
    heap_lo = heap_hi = 0;
    return;
  }
  heap_lo = (uint8_t *)lo;
  heap_hi = (uint8_t *)hi;
  /* One free block per <= 2 GiB so size never overflows (RAM here is far smaller anyway). */
  at(heap_lo)->size = (uint32_t)(hi - lo);
  at(heap_lo)->tag = TAG_FREE;
}

/* Merges the free block at p with the free blocks that follow it. */
static void merge_following(uint8_t *p) {
  struct block *b = at(p);
  for (;;) {
    uint8_t *n = p + b->size;
    if (n >= heap_hi || at(n)->tag != TAG_FREE) return;
    b->size += at(n)->size;
  }
}

/* Splits `size` bytes (header included) off the front of block p; the rest stays free. */
static void take(uint8_t *p, uint32_t size) {
  struct block *b = at(p);
  if (b->size - size >= MIN_BLOCK) {
    struct block *rest = at(p + size);
    rest->size = b->size - size;
    rest->tag = TAG_FREE;
    b->size = size;
  }
  b->tag = TAG_USED;
}

void *aligned_alloc(size_t align, size_t size) {
  if (!heap_lo || size == 0 || size > 0x7fffffffu || (align & (align - 1))) return 0;
  if (align < 8) align = 8;
  uint32_t need = ((uint32_t)size + HDR + 7) & ~7u;
  for (uint8_t *p = heap_lo; p < heap_hi; p += at(p)->size) {
    if (at(p)->tag != TAG_FREE) continue;
    merge_following(p);
    uintptr_t payload = (uintptr_t)p + HDR;
    uintptr_t aligned = (payload + align - 1) & ~(uintptr_t)(align - 1);
    /* A leading gap must be able to stand as a free block of its own. */
    while (aligned != payload && aligned - payload < MIN_BLOCK) aligned += align;
    uintptr_t end = (uintptr_t)p + at(p)->size;
    if (aligned + need - HDR > end) continue;
    if (aligned != payload) {
      uint8_t *q = (uint8_t *)(aligned - HDR);
      at(q)->size = (uint32_t)(end - (uintptr_t)q);
      at(q)->tag = TAG_FREE;
      at(p)->size = (uint32_t)((uintptr_t)q - (uintptr_t)p);
      p = q;
    }
    take(p, need);
    return p + HDR;
  }
  return 0;
}

void *malloc(size_t size) { return aligned_alloc(8, size); }

void *calloc(size_t n, size_t size) {
  if (size && n > 0x7fffffffu / size) return 0;
  void *p = malloc(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

void free(void *ptr) {
  if (!ptr) return;
  uint8_t *p = (uint8_t *)ptr - HDR;
  if (p < heap_lo || p >= heap_hi || ((uintptr_t)ptr & 7) || at(p)->tag != TAG_USED) {
    printf("xenon: free(%p): not an allocated block\n", ptr);
    return;
  }
  at(p)->tag = TAG_FREE;
  merge_following(p);
}

size_t heap_free_bytes(size_t *largest) {
  size_t total = 0, big = 0;
  for (uint8_t *p = heap_lo; p && p < heap_hi; p += at(p)->size) {
    if (at(p)->tag != TAG_FREE) continue;
    merge_following(p);
    size_t n = at(p)->size - HDR;
    total += n;
    if (n > big) big = n;
  }
  if (largest) *largest = big;
  return total;
}
