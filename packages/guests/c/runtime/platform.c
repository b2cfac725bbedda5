/* Device-tree facts and runtime set-up; see include/platform.h. */
#include "platform.h"

#include <stdio.h>
#include <string.h>

#include "bootargs.h"
#include "fdt.h"
#include "stdlib.h"
#include "trap.h"
#include "xen.h"

#define DEFAULT_RAM_SIZE (4u << 20)
#define DEFAULT_TIMEBASE_HZ 10000000u
#define DEFAULT_UPCALL_IRQ 9u

struct xen_platform xen_platform;

/* Next free page of the /hypervisor window, as an offset from its base. */
static uint32_t window_next;

static int has_compatible(const struct fdt *f, int node, const char *want) {
  int len;
  const char *p = fdt_get_prop(f, node, "compatible", &len);
  if (!p) return 0;
  /* A string list: NUL-separated entries. */
  for (int i = 0; i < len;) {
    const char *s = p + i;
    size_t n = strlen(s);
    if (strcmp(s, want) == 0) return 1;
    i += (int)n + 1;
  }
  return 0;
}

/* Fills xen_platform from the tree; returns 0 or the first FDT_E_* error (fields keep defaults). */
static int read_tree(const void *blob) {
  struct xen_platform *p = &xen_platform;
  struct fdt f;
  /* The blob sits at the top of RAM; its header's totalsize is checked against the room left. */
  uintptr_t room = (uintptr_t)(p->ram_base + p->ram_size) - (uintptr_t)blob;
  if ((uintptr_t)blob < p->ram_base || room > p->ram_size) room = 64 * 1024;
  int rc = fdt_open(&f, blob, room);
  if (rc < 0) return rc;
  p->fdt = blob;
  p->fdt_size = f.total_size;

  int root = fdt_root(&f);
  const char *model;
  static const char prefix[] = "Xenon guest ";
  if (fdt_get_string(&f, root, "model", &model) == 0 && strncmp(model, prefix, sizeof prefix - 1) == 0)
    p->name = model + sizeof prefix - 1;
  int chosen = fdt_find_node(&f, "/chosen");
  if (chosen >= 0) {
    uint32_t domid;
    if (fdt_get_u32(&f, chosen, "xenon,domid", &domid) == 0) p->domid = domid;
    const char *args;
    if (fdt_get_string(&f, chosen, "bootargs", &args) == 0) p->bootargs = args;
  }
  int cpus = fdt_find_node(&f, "/cpus");
  if (cpus >= 0) {
    uint32_t hz;
    if (fdt_get_u32(&f, cpus, "timebase-frequency", &hz) == 0 && hz != 0) p->timebase_hz = hz;
  }
  int mem = fdt_find_node(&f, "/memory");
  if (mem >= 0) {
    uint64_t base, size;
    rc = fdt_get_reg(&f, root, mem, 0, &base, &size);
    if (rc < 0) return rc;
    if (base >> 32 || size == 0 || base + size > (1ull << 32)) return FDT_E_BADVALUE;
    p->ram_base = (uint32_t)base;
    p->ram_size = size;
  }
  int hyp = fdt_find_node(&f, "/hypervisor");
  if (hyp >= 0) {
    p->xen = has_compatible(&f, hyp, "xen,xen");
    uint64_t base, size;
    if (fdt_get_reg(&f, root, hyp, 0, &base, &size) == 0 && base + size <= (1ull << 32) &&
        (base & (XEN_PAGE_SIZE - 1)) == 0) {
      p->window_base = (uint32_t)base;
      p->window_size = (uint32_t)size & ~(XEN_PAGE_SIZE - 1);
    }
    uint32_t irq;
    if (fdt_get_u32(&f, hyp, "xenon,upcall-irq", &irq) == 0) p->upcall_irq = irq;
  }
  return 0;
}

int xenon_init(unsigned vcpu_id, void *fdt) {
  struct xen_platform *p = &xen_platform;
  trap_init();
  p->boot_vcpu = vcpu_id;
  p->domid = DOMID_SELF;
  p->ram_base = (uint32_t)(uintptr_t)__image_start;
  p->ram_size = DEFAULT_RAM_SIZE;
  p->timebase_hz = DEFAULT_TIMEBASE_HZ;
  p->upcall_irq = DEFAULT_UPCALL_IRQ;
  p->bootargs = "";
  p->name = "";
  int rc = fdt ? read_tree(fdt) : FDT_E_NOTFOUND;
  if (rc < 0) printf("xenon: device tree at %p unusable (error %d), using defaults\n", fdt, rc);

  /* The heap ends below the device tree (whose bootargs the parser keeps pointing into). */
  uintptr_t heap_end = (uintptr_t)(p->ram_base + p->ram_size);
  if (p->fdt && (uintptr_t)p->fdt > (uintptr_t)_end && (uintptr_t)p->fdt < heap_end)
    heap_end = (uintptr_t)p->fdt & ~(uintptr_t)(XEN_PAGE_SIZE - 1);
  heap_init(_end, (void *)heap_end);
  bootargs_parse(p->bootargs);
  return rc;
}

uint32_t xen_window_alloc(unsigned pages) {
  uint32_t bytes = pages * XEN_PAGE_SIZE;
  if (pages == 0 || pages > xen_platform.window_size / XEN_PAGE_SIZE) return 0;
  if (xen_platform.window_size - window_next < bytes) return 0;
  uint32_t addr = xen_platform.window_base + window_next;
  window_next += bytes;
  return addr;
}
