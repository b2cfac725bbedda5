/*
 * Minimal flattened-device-tree (DTB) reader for guests: header validation, node lookup by path,
 * property access, subnode iteration and big-endian cell decoding. Read-only, freestanding
 * (needs only memcmp/strlen), no allocation.
 *
 * Safety contract: after fdt_open() has accepted a blob, no function reads outside the header,
 * the memory-reservation list, the struct block or the strings block, whatever the blob holds.
 * The struct block is not validated up front (call fdt_check_struct() for that); instead every
 * walk checks each token, name and length as it goes and fails with FDT_E_BADSTRUCTURE or
 * FDT_E_TRUNCATED. Every walk advances by at least 4 bytes per step, so none can loop forever.
 *
 * Nodes are named by "node offsets": byte offsets of their FDT_BEGIN_NODE token inside the
 * struct block (the root is usually 0). Negative return values are FDT_E_* errors.
 */
#ifndef XENON_FDT_H
#define XENON_FDT_H

#include <stddef.h>
#include <stdint.h>

#define FDT_MAGIC 0xd00dfeedu

enum {
  FDT_E_NOTFOUND = -1,     /* no such node / property / more subnodes */
  FDT_E_TRUNCATED = -2,    /* something runs past the end of its block or the buffer */
  FDT_E_BADMAGIC = -3,     /* not a DTB */
  FDT_E_BADVERSION = -4,   /* version < 16, or last_comp_version > 17 */
  FDT_E_BADOFFSET = -5,    /* a header offset, node offset or string offset is out of range */
  FDT_E_BADLAYOUT = -6,    /* misaligned or overlapping blocks */
  FDT_E_BADSTRUCTURE = -7, /* bad token sequence */
  FDT_E_BADVALUE = -8,     /* property of the wrong size for the accessor */
  FDT_E_BADPATH = -9,      /* path does not start with '/' */
};

/* A validated view of a blob. Filled by fdt_open; treat as read-only. */
struct fdt {
  const uint8_t *blob;
  uint32_t total_size;
  uint32_t version;
  uint32_t boot_cpuid_phys;
  uint32_t rsvmap_off;  /* memory reservation block */
  uint32_t rsvmap_count; /* entries before the terminator */
  uint32_t struct_off;
  uint32_t struct_size; /* for v16 blobs: the room up to the next block or totalsize */
  uint32_t strings_off;
  uint32_t strings_size;
};

/* Validates the header of the blob at `blob` (4-byte aligned; `bufsize` bytes readable) and fills
 * `f`. Returns 0 or an FDT_E_* error. */
int fdt_open(struct fdt *f, const void *blob, size_t bufsize);

/* Walks the whole struct block once: balanced nodes, valid tokens, names and string offsets, a
 * single root and a final FDT_END. Returns 0 or an FDT_E_* error. */
int fdt_check_struct(const struct fdt *f);

/* Memory reservation `index` (0-based). Returns 0, or FDT_E_NOTFOUND past the last one. */
int fdt_mem_rsv(const struct fdt *f, uint32_t index, uint64_t *address, uint64_t *size);

/* Offset of the root node. */
int fdt_root(const struct fdt *f);

/* Offset of the node at an absolute path such as "/cpus/cpu@0". A component without '@' also
 * matches a node "component@unit" (the first such child) when no child has that exact name. */
int fdt_find_node(const struct fdt *f, const char *path);

/* Offset of the child of `parent` named `name` (matching as in fdt_find_node). `len` bytes of
 * `name` are used, so it need not be NUL-terminated. */
int fdt_subnode(const struct fdt *f, int parent, const char *name, size_t len);

/* Subnode iteration: first child of `node`, and the next sibling after `node`.
 * Both return FDT_E_NOTFOUND at the end. */
int fdt_first_subnode(const struct fdt *f, int node);
int fdt_next_subnode(const struct fdt *f, int node);

/* The node's name (unit address included, "" for the root), NUL-terminated inside the blob.
 * Returns NULL on error (with *err set if err != NULL). */
const char *fdt_node_name(const struct fdt *f, int node, int *err);

/* A property's value and length. Returns NULL when absent or on error; *lenp then holds the
 * (negative) FDT_E_* code if lenp != NULL. */
const void *fdt_get_prop(const struct fdt *f, int node, const char *name, int *lenp);

/* Property iteration within a node: returns the offset of the first/next FDT_PROP token, or
 * FDT_E_NOTFOUND when the node has no (more) properties. */
int fdt_first_prop(const struct fdt *f, int node);
int fdt_next_prop(const struct fdt *f, int prop);
/* The name, value and length of the property at offset `prop`. Returns 0 or an error. */
int fdt_prop_at(const struct fdt *f, int prop, const char **name, const void **value, int *len);

/* Typed getters: 0 on success, FDT_E_NOTFOUND if absent, FDT_E_BADVALUE if the size is wrong. */
int fdt_get_u32(const struct fdt *f, int node, const char *name, uint32_t *out);
int fdt_get_u64(const struct fdt *f, int node, const char *name, uint64_t *out);
/* A NUL-terminated string property (the value must end in NUL). */
int fdt_get_string(const struct fdt *f, int node, const char *name, const char **out);

/* #address-cells / #size-cells that `node` imposes on its children (defaults 2 and 1). Returns
 * the count, or FDT_E_BADVALUE if outside 1..4 (address) / 0..4 (size). */
int fdt_address_cells(const struct fdt *f, int node);
int fdt_size_cells(const struct fdt *f, int node);

/* Entry `index` of the `reg` property of `node`, whose parent is `parent`. Values wider than 64
 * bits are refused with FDT_E_BADVALUE. */
int fdt_get_reg(const struct fdt *f, int parent, int node, uint32_t index, uint64_t *address, uint64_t *size);

/* Node with the given phandle (`phandle` or `linux,phandle`), or FDT_E_NOTFOUND. */
int fdt_node_by_phandle(const struct fdt *f, uint32_t phandle);

/* Big-endian loads from an arbitrary (possibly unaligned) address. */
uint32_t fdt_be32(const void *p);
uint64_t fdt_be64(const void *p);
/* `cells` (1 or 2) big-endian cells as one number. */
uint64_t fdt_read_cells(const void *p, int cells);

#endif
