/*
 * Guest-side DTB reader; see include/fdt.h for the API and its safety contract.
 *
 * Invariant used throughout: offsets handed around are struct-block offsets that were produced
 * by next_token() (or are re-checked by it), and next_token() only returns after checking that
 * the whole token, including a node name and its NUL or a property value, lies inside
 * [0, struct_size). Lengths from the blob are compared against the remaining room before any
 * addition, so nothing overflows.
 */
#include "fdt.h"

#include <string.h>

enum {
  TOK_BEGIN_NODE = 1,
  TOK_END_NODE = 2,
  TOK_PROP = 3,
  TOK_NOP = 4,
  TOK_END = 9,
};

enum {
  HDR_MAGIC = 0,
  HDR_TOTALSIZE = 4,
  HDR_OFF_STRUCT = 8,
  HDR_OFF_STRINGS = 12,
  HDR_OFF_RSVMAP = 16,
  HDR_VERSION = 20,
  HDR_LAST_COMP = 24,
  HDR_BOOT_CPUID = 28,
  HDR_SIZE_STRINGS = 32,
  HDR_SIZE_STRUCT = 36,
  HDR_V16_SIZE = 36,
  HDR_V17_SIZE = 40,
  RSV_ENTRY = 16,
};

uint32_t fdt_be32(const void *p) {
  const uint8_t *b = p;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

uint64_t fdt_be64(const void *p) {
  const uint8_t *b = p;
  return (uint64_t)fdt_be32(b) << 32 | fdt_be32(b + 4);
}

uint64_t fdt_read_cells(const void *p, int cells) {
  const uint8_t *b = p;
  uint64_t v = 0;
  for (int i = 0; i < cells; i++) v = v << 32 | fdt_be32(b + 4 * i);
  return v;
}

static uint32_t hdr(const uint8_t *blob, uint32_t field) { return fdt_be32(blob + field); }

/* True if [off, off+size) lies inside [lo, hi). */
static int inside(uint32_t off, uint32_t size, uint32_t lo, uint32_t hi) {
  return off >= lo && off <= hi && size <= hi - off;
}

static int overlap(uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) { return a0 < b1 && b0 < a1; }

int fdt_open(struct fdt *f, const void *blob, size_t bufsize) {
  const uint8_t *b = blob;
  if (bufsize < 4) return FDT_E_TRUNCATED;
  if (hdr(b, HDR_MAGIC) != FDT_MAGIC) return FDT_E_BADMAGIC;
  if (bufsize < HDR_LAST_COMP + 4) return FDT_E_TRUNCATED;
  uint32_t version = hdr(b, HDR_VERSION);
  uint32_t last_comp = hdr(b, HDR_LAST_COMP);
  if (version < 16 || last_comp > 17 || last_comp > version) return FDT_E_BADVERSION;
  uint32_t hdr_size = version >= 17 ? HDR_V17_SIZE : HDR_V16_SIZE;
  if (bufsize < hdr_size) return FDT_E_TRUNCATED;

  uint32_t total = hdr(b, HDR_TOTALSIZE);
  if (total > bufsize) return FDT_E_TRUNCATED;
  /* Offsets are returned as int, so the blob must fit in one. */
  if (total < hdr_size || total > 0x7fffffffu) return FDT_E_BADLAYOUT;

  uint32_t rsv = hdr(b, HDR_OFF_RSVMAP);
  uint32_t st = hdr(b, HDR_OFF_STRUCT);
  uint32_t str = hdr(b, HDR_OFF_STRINGS);
  uint32_t str_size = hdr(b, HDR_SIZE_STRINGS);
  if (rsv % 8 != 0 || st % 4 != 0) return FDT_E_BADLAYOUT;
  if (!inside(rsv, RSV_ENTRY, hdr_size, total) || !inside(str, str_size, hdr_size, total)) return FDT_E_BADOFFSET;

  uint32_t st_size;
  if (version >= 17) {
    st_size = hdr(b, HDR_SIZE_STRUCT);
    if (!inside(st, st_size, hdr_size, total)) return FDT_E_BADOFFSET;
  } else {
    /* v16 has no struct size: allow the room up to the next block (or totalsize). */
    if (!inside(st, 0, hdr_size, total)) return FDT_E_BADOFFSET;
    uint32_t end = total;
    if (str > st && str < end) end = str;
    if (rsv > st && rsv < end) end = rsv;
    st_size = end - st;
  }

  /* The reservation list ends at the first entry with size 0 and must fit in totalsize. */
  uint32_t count = 0;
  for (uint32_t at = rsv;; at += RSV_ENTRY, count++) {
    if (total - at < RSV_ENTRY) return FDT_E_TRUNCATED;
    if (fdt_be64(b + at + 8) == 0) break;
  }
  uint32_t rsv_end = rsv + (count + 1) * RSV_ENTRY;
  if (overlap(rsv, rsv_end, st, st + st_size) || overlap(rsv, rsv_end, str, str + str_size) ||
      overlap(st, st + st_size, str, str + str_size)) {
    return FDT_E_BADLAYOUT;
  }

  f->blob = b;
  f->total_size = total;
  f->version = version;
  f->boot_cpuid_phys = hdr(b, HDR_BOOT_CPUID);
  f->rsvmap_off = rsv;
  f->rsvmap_count = count;
  f->struct_off = st;
  f->struct_size = st_size;
  f->strings_off = str;
  f->strings_size = str_size;
  return 0;
}

int fdt_mem_rsv(const struct fdt *f, uint32_t index, uint64_t *address, uint64_t *size) {
  if (index >= f->rsvmap_count) return FDT_E_NOTFOUND;
  const uint8_t *e = f->blob + f->rsvmap_off + index * RSV_ENTRY;
  *address = fdt_be64(e);
  *size = fdt_be64(e + 8);
  return 0;
}

static const uint8_t *sp(const struct fdt *f, uint32_t off) { return f->blob + f->struct_off + off; }

static uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

/*
 * Decodes the token at struct offset `off`. On success returns the token and sets *next to the
 * offset just past it (name or value included, padded). Errors: FDT_E_BADOFFSET for a
 * misaligned or negative offset, FDT_E_TRUNCATED if anything runs past the struct block,
 * FDT_E_BADSTRUCTURE for an unknown token.
 */
static int next_token(const struct fdt *f, int off, int *next) {
  if (off < 0 || off % 4 != 0) return FDT_E_BADOFFSET;
  uint32_t o = (uint32_t)off;
  if (o > f->struct_size || f->struct_size - o < 4) return FDT_E_TRUNCATED;
  uint32_t tok = fdt_be32(sp(f, o));
  o += 4;
  uint32_t room = f->struct_size - o;
  switch (tok) {
  case TOK_BEGIN_NODE: {
    const uint8_t *name = sp(f, o);
    uint32_t n = 0;
    while (n < room && name[n] != 0) n++;
    if (n == room || pad4(n + 1) > room) return FDT_E_TRUNCATED;
    o += pad4(n + 1);
    break;
  }
  case TOK_PROP: {
    if (room < 8) return FDT_E_TRUNCATED;
    uint32_t len = fdt_be32(sp(f, o));
    room -= 8;
    if (len > room || pad4(len) > room) return FDT_E_TRUNCATED;
    o += 8 + pad4(len);
    break;
  }
  case TOK_END_NODE:
  case TOK_NOP:
  case TOK_END:
    break;
  default:
    return FDT_E_BADSTRUCTURE;
  }
  *next = (int)o;
  return (int)tok;
}

/* The next token at or after `off` that is not a NOP; *at gets its offset. */
static int skip_nops(const struct fdt *f, int off, int *at, int *next) {
  for (;;) {
    int tok = next_token(f, off, next);
    if (tok != TOK_NOP) {
      *at = off;
      return tok;
    }
    off = *next;
  }
}

/* Offset just past a node's BEGIN_NODE token and name, or an error if `node` is not a node. */
static int node_body(const struct fdt *f, int node) {
  int next;
  int tok = next_token(f, node, &next);
  if (tok < 0) return tok;
  return tok == TOK_BEGIN_NODE ? next : FDT_E_BADOFFSET;
}

int fdt_root(const struct fdt *f) {
  int at, next;
  int tok = skip_nops(f, 0, &at, &next);
  if (tok < 0) return tok;
  return tok == TOK_BEGIN_NODE ? at : FDT_E_BADSTRUCTURE;
}

const char *fdt_node_name(const struct fdt *f, int node, int *err) {
  int body = node_body(f, node);
  if (body < 0) {
    if (err) *err = body;
    return NULL;
  }
  return (const char *)sp(f, (uint32_t)node + 4);
}

/* Validates the property name at string offset `nameoff` and returns it (or NULL + *err). */
static const char *string_at(const struct fdt *f, uint32_t nameoff, int *err) {
  if (nameoff >= f->strings_size) {
    *err = FDT_E_BADOFFSET;
    return NULL;
  }
  const char *s = (const char *)f->blob + f->strings_off + nameoff;
  uint32_t room = f->strings_size - nameoff;
  uint32_t n = 0;
  while (n < room && s[n] != 0) n++;
  if (n == room) {
    *err = FDT_E_TRUNCATED;
    return NULL;
  }
  return s;
}

int fdt_prop_at(const struct fdt *f, int prop, const char **name, const void **value, int *len) {
  int next;
  int tok = next_token(f, prop, &next);
  if (tok < 0) return tok;
  if (tok != TOK_PROP) return FDT_E_BADOFFSET;
  int err = 0;
  const char *n = string_at(f, fdt_be32(sp(f, (uint32_t)prop + 8)), &err);
  if (!n) return err;
  if (name) *name = n;
  if (value) *value = sp(f, (uint32_t)prop + 12);
  /* next_token checked len against struct_size, which is below 2^31. */
  if (len) *len = (int)fdt_be32(sp(f, (uint32_t)prop + 4));
  return 0;
}

/* First PROP at or after `off` within the current node, skipping NOPs. */
static int prop_from(const struct fdt *f, int off) {
  int at, next;
  int tok = skip_nops(f, off, &at, &next);
  if (tok < 0) return tok;
  if (tok == TOK_PROP) return at;
  if (tok == TOK_BEGIN_NODE || tok == TOK_END_NODE) return FDT_E_NOTFOUND;
  return FDT_E_BADSTRUCTURE;
}

int fdt_first_prop(const struct fdt *f, int node) {
  int body = node_body(f, node);
  return body < 0 ? body : prop_from(f, body);
}

int fdt_next_prop(const struct fdt *f, int prop) {
  int next;
  int tok = next_token(f, prop, &next);
  if (tok < 0) return tok;
  if (tok != TOK_PROP) return FDT_E_BADOFFSET;
  return prop_from(f, next);
}

const void *fdt_get_prop(const struct fdt *f, int node, const char *name, int *lenp) {
  int p = fdt_first_prop(f, node);
  while (p >= 0) {
    const char *n;
    const void *v;
    int len;
    int err = fdt_prop_at(f, p, &n, &v, &len);
    if (err < 0) {
      p = err;
      break;
    }
    if (strcmp(n, name) == 0) {
      if (lenp) *lenp = len;
      return v;
    }
    p = fdt_next_prop(f, p);
  }
  if (lenp) *lenp = p; /* FDT_E_NOTFOUND at the end of the properties, else the error */
  return NULL;
}

/* Offset of the first child at or after `off` (which is inside a node's body), skipping
 * properties and NOPs; FDT_E_NOTFOUND at the node's END_NODE. */
static int child_from(const struct fdt *f, int off, int allow_props) {
  for (;;) {
    int at, next;
    int tok = skip_nops(f, off, &at, &next);
    if (tok < 0) return tok;
    if (tok == TOK_BEGIN_NODE) return at;
    if (tok == TOK_END_NODE) return FDT_E_NOTFOUND;
    if (tok != TOK_PROP || !allow_props) return FDT_E_BADSTRUCTURE;
    off = next;
  }
}

int fdt_first_subnode(const struct fdt *f, int node) {
  int body = node_body(f, node);
  return body < 0 ? body : child_from(f, body, 1);
}

int fdt_next_subnode(const struct fdt *f, int node) {
  int depth = 0;
  int off = node;
  int body = node_body(f, node);
  if (body < 0) return body;
  /* Skip the node's subtree: each step consumes >= 4 bytes, so this ends. */
  do {
    int next;
    int tok = next_token(f, off, &next);
    if (tok < 0) return tok;
    if (tok == TOK_BEGIN_NODE) depth++;
    else if (tok == TOK_END_NODE) depth--;
    else if (tok == TOK_END) return FDT_E_BADSTRUCTURE;
    off = next;
  } while (depth > 0);
  /* After the root there is no parent body: FDT_END means "no more siblings". */
  int at, next;
  int tok = skip_nops(f, off, &at, &next);
  if (tok == TOK_END) return FDT_E_NOTFOUND;
  return child_from(f, off, 0);
}

/* Does node name `n` match the first `len` bytes of `want`? 2 = exact, 1 = base name (want has
 * no unit address and n is want@...), 0 = no. `n` is NUL-terminated (checked by next_token). */
static int name_match(const char *n, const char *want, size_t len) {
  size_t nlen = strlen(n);
  if (nlen < len || memcmp(n, want, len) != 0) return 0;
  if (nlen == len) return 2;
  if (n[len] != '@') return 0;
  for (size_t i = 0; i < len; i++)
    if (want[i] == '@') return 0;
  return 1;
}

int fdt_subnode(const struct fdt *f, int parent, const char *name, size_t len) {
  int base = FDT_E_NOTFOUND;
  int c = fdt_first_subnode(f, parent);
  for (; c >= 0; c = fdt_next_subnode(f, c)) {
    const char *n = fdt_node_name(f, c, NULL);
    int m = name_match(n, name, len);
    if (m == 2) return c;
    if (m == 1 && base < 0) base = c;
  }
  return c == FDT_E_NOTFOUND ? base : c;
}

int fdt_find_node(const struct fdt *f, const char *path) {
  if (path[0] != '/') return FDT_E_BADPATH;
  int node = fdt_root(f);
  const char *p = path;
  while (node >= 0) {
    while (*p == '/') p++;
    if (*p == 0) break;
    const char *end = p;
    while (*end != 0 && *end != '/') end++;
    node = fdt_subnode(f, node, p, (size_t)(end - p));
    p = end;
  }
  return node;
}

int fdt_get_u32(const struct fdt *f, int node, const char *name, uint32_t *out) {
  int len;
  const void *v = fdt_get_prop(f, node, name, &len);
  if (!v) return len;
  if (len != 4) return FDT_E_BADVALUE;
  *out = fdt_be32(v);
  return 0;
}

int fdt_get_u64(const struct fdt *f, int node, const char *name, uint64_t *out) {
  int len;
  const void *v = fdt_get_prop(f, node, name, &len);
  if (!v) return len;
  if (len != 8) return FDT_E_BADVALUE;
  *out = fdt_be64(v);
  return 0;
}

int fdt_get_string(const struct fdt *f, int node, const char *name, const char **out) {
  int len;
  const char *v = fdt_get_prop(f, node, name, &len);
  if (!v) return len;
  if (len == 0 || v[len - 1] != 0) return FDT_E_BADVALUE;
  *out = v;
  return 0;
}

static int ncells(const struct fdt *f, int node, const char *name, uint32_t dflt, uint32_t min) {
  uint32_t v;
  int err = fdt_get_u32(f, node, name, &v);
  if (err == FDT_E_NOTFOUND) v = dflt;
  else if (err < 0) return err;
  return v < min || v > 4 ? FDT_E_BADVALUE : (int)v;
}

int fdt_address_cells(const struct fdt *f, int node) { return ncells(f, node, "#address-cells", 2, 1); }

int fdt_size_cells(const struct fdt *f, int node) { return ncells(f, node, "#size-cells", 1, 0); }

/* `cells` cells at `p` as a u64; FDT_E_BADVALUE if the value needs more than 64 bits. */
static int read_wide(const uint8_t *p, int cells, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < cells; i++) {
    if (v >> 32) return FDT_E_BADVALUE;
    v = v << 32 | fdt_be32(p + 4 * i);
  }
  *out = v;
  return 0;
}

int fdt_get_reg(const struct fdt *f, int parent, int node, uint32_t index, uint64_t *address, uint64_t *size) {
  int ac = fdt_address_cells(f, parent);
  if (ac < 0) return ac;
  int sc = fdt_size_cells(f, parent);
  if (sc < 0) return sc;
  int len;
  const uint8_t *v = fdt_get_prop(f, node, "reg", &len);
  if (!v) return len;
  uint32_t stride = 4u * (uint32_t)(ac + sc);
  if ((uint32_t)len % stride != 0) return FDT_E_BADVALUE;
  if (index >= (uint32_t)len / stride) return FDT_E_NOTFOUND;
  const uint8_t *e = v + index * stride;
  int err = read_wide(e, ac, address);
  return err < 0 ? err : read_wide(e + 4 * ac, sc, size);
}

int fdt_node_by_phandle(const struct fdt *f, uint32_t phandle) {
  if (phandle == 0 || phandle == 0xffffffffu) return FDT_E_NOTFOUND;
  int cur = -1;
  int off = 0;
  for (;;) {
    int next;
    int tok = next_token(f, off, &next);
    if (tok < 0) return tok;
    if (tok == TOK_END) return FDT_E_NOTFOUND;
    if (tok == TOK_BEGIN_NODE) cur = off;
    else if (tok == TOK_END_NODE) cur = -1;
    else if (tok == TOK_PROP) {
      const char *name;
      const void *v;
      int len;
      int err = fdt_prop_at(f, off, &name, &v, &len);
      if (err < 0) return err;
      if (cur < 0) return FDT_E_BADSTRUCTURE;
      if (len == 4 && fdt_be32(v) == phandle && (strcmp(name, "phandle") == 0 || strcmp(name, "linux,phandle") == 0)) {
        return cur;
      }
    }
    off = next;
  }
}

int fdt_check_struct(const struct fdt *f) {
  int off = 0;
  int depth = 0;
  int seen_root = 0;
  int prev = TOK_END; /* last non-NOP token; a PROP may only follow BEGIN_NODE or PROP */
  for (;;) {
    int next;
    int tok = next_token(f, off, &next);
    if (tok < 0) return tok;
    switch (tok) {
    case TOK_BEGIN_NODE: {
      const char *name = (const char *)sp(f, (uint32_t)off + 4);
      if (depth == 0) {
        if (seen_root || name[0] != 0) return FDT_E_BADSTRUCTURE;
        seen_root = 1;
      } else if (name[0] == 0 || strchr(name, '/')) {
        return FDT_E_BADSTRUCTURE;
      }
      depth++;
      break;
    }
    case TOK_PROP: {
      if (depth == 0 || (prev != TOK_BEGIN_NODE && prev != TOK_PROP)) return FDT_E_BADSTRUCTURE;
      int err = fdt_prop_at(f, off, NULL, NULL, NULL);
      if (err < 0) return err;
      break;
    }
    case TOK_END_NODE:
      if (depth == 0) return FDT_E_BADSTRUCTURE;
      depth--;
      break;
    case TOK_END:
      if (!seen_root || depth != 0) return FDT_E_BADSTRUCTURE;
      if (f->version >= 17 && (uint32_t)next != f->struct_size) return FDT_E_BADSTRUCTURE;
      return 0;
    default: /* NOP */
      break;
    }
    if (tok != TOK_NOP) prev = tok;
    off = next;
  }
}
