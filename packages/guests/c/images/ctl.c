/*
 * ctl: a small control domain (the "Zephyr as dom0" analogue). Booted privileged, it builds a
 * domain from nothing through the control hypercalls, runs it, and tears it down:
 *
 *   physinfo -> list -> createdomain -> max_mem -> populate_physmap (the new domain's RAM) ->
 *   load the payload ELF into that RAM through foreign mappings (add_to_physmap_batch with
 *   XENMAPSPACE_gmfn_foreign, remove_from_physmap) -> setvcpucontext (pc = entry) -> list ->
 *   unpause -> wait until it has shut down or is gone -> destroydomain -> list.
 *
 *   bootargs: pages=<n> RAM pages for the new domain (default 256), cpupool=<id> (0),
 *             name=<x> (printed only)
 *
 * The payload is hello.elf, linked into this image by the build (payload_start..payload_end).
 * Every step prints its result; any failure returns 1 (crash), success returns 0 (poweroff).
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"

extern const uint8_t payload_start[];
extern const uint8_t payload_end[];

#define PAGE XEN_PAGE_SIZE
#define MAX_PAGES 1024u
/* Where foreign pages are mapped while being written: a hole in our own physmap. */
#define WINDOW_BASE 0x60000000u
#define WINDOW_PAGES 16u

static xen_pfn_t extents[MAX_PAGES];

static long domctl(uint32_t cmd, domid_t dom, struct xen_domctl *op) {
  op->cmd = cmd;
  op->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
  op->domain = dom;
  return xen_domctl(op);
}

static const char *state_of(uint32_t flags) {
  if (flags & XEN_DOMINF_dying) return "dying";
  if (flags & XEN_DOMINF_shutdown) return "shutdown";
  if (flags & XEN_DOMINF_paused) return "paused";
  if (flags & XEN_DOMINF_running) return "running";
  if (flags & XEN_DOMINF_blocked) return "blocked";
  return "-";
}

/* Like `xl list`: every domain, its memory, vCPUs, state and pool. */
static int list_domains(const char *when) {
  static struct xen_domctl_getdomaininfo info[16];
  struct xen_sysctl op;
  xen_sysctl_init(&op, XEN_SYSCTL_getdomaininfolist);
  op.u.getdomaininfolist.first_domain = 0;
  op.u.getdomaininfolist.max_domains = 16;
  op.u.getdomaininfolist.buffer = xen_handle(info);
  long rc = xen_sysctl(&op);
  if (rc != 0) {
    printf("ctl: getdomaininfolist failed (%ld)\n", rc);
    return -1;
  }
  unsigned n = op.u.getdomaininfolist.num_domains;
  printf("ctl: %s: %u domains\n", when, n);
  for (unsigned i = 0; i < n; i++) {
    printf("ctl:   d%u mem %u KiB vcpus %u %s pool %u\n", info[i].domain, (unsigned)(info[i].tot_pages * 4),
           info[i].nr_online_vcpus, state_of(info[i].flags), info[i].cpupool);
  }
  return (int)n;
}

/* getdomaininfo of exactly `dom`: 1 found, 0 gone, < 0 error. */
static long domain_info(domid_t dom, struct xen_domctl_getdomaininfo *out) {
  struct xen_domctl op;
  xen_domctl_init(&op, XEN_DOMCTL_getdomaininfo, dom);
  long rc = xen_domctl(&op);
  if (rc == -XEN_ESRCH) return 0;
  if (rc != 0) return rc;
  if (op.u.getdomaininfo.domain != dom) return 0; /* the next one up: ours is gone */
  *out = op.u.getdomaininfo;
  return 1;
}

static long map_foreign(domid_t dom, const xen_ulong_t *gfns, const xen_pfn_t *at, int *errs, unsigned n) {
  struct xen_add_to_physmap_batch b;
  memset(&b, 0, sizeof b);
  b.domid = DOMID_SELF;
  b.space = XENMAPSPACE_gmfn_foreign;
  b.size = (uint16_t)n;
  b.u.foreign_domid = dom;
  b.idxs = xen_handle(gfns);
  b.gpfns = xen_handle(at);
  b.errs = xen_handle(errs);
  return HYPERVISOR_memory_op(XENMEM_add_to_physmap_batch, &b);
}

static long unmap(xen_pfn_t gpfn) {
  struct xen_remove_from_physmap r;
  memset(&r, 0, sizeof r);
  r.domid = DOMID_SELF;
  r.gpfn = gpfn;
  return HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &r);
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

/*
 * Copies [src, src + filesz) to guest-physical `paddr` of `dom` and zeroes up to memsz, a window
 * of foreign pages at a time. Returns 0 or a negative errno.
 */
static long load_segment(domid_t dom, uint32_t paddr, const uint8_t *src, uint32_t filesz, uint32_t memsz) {
  uint32_t first = paddr / PAGE, last = (paddr + memsz + PAGE - 1) / PAGE;
  for (uint32_t page = first; page < last; page += WINDOW_PAGES) {
    unsigned n = last - page < WINDOW_PAGES ? last - page : WINDOW_PAGES;
    xen_ulong_t gfns[WINDOW_PAGES];
    xen_pfn_t at[WINDOW_PAGES];
    int errs[WINDOW_PAGES];
    for (unsigned i = 0; i < n; i++) {
      gfns[i] = page + i;
      at[i] = WINDOW_BASE / PAGE + i;
      errs[i] = 1;
    }
    long rc = map_foreign(dom, gfns, at, errs, n);
    for (unsigned i = 0; rc == 0 && i < n; i++)
      if (errs[i] != 0) rc = errs[i];
    if (rc != 0) {
      printf("ctl: foreign map of d%u gfn %#x failed (%ld)\n", dom, (unsigned)page, rc);
      return rc;
    }
    for (unsigned i = 0; i < n; i++) {
      uint32_t pa = (page + i) * PAGE;
      uint8_t *win = (uint8_t *)(uintptr_t)(WINDOW_BASE + i * PAGE);
      for (uint32_t off = 0; off < PAGE; off++) {
        uint32_t a = pa + off;
        if (a < paddr || a >= paddr + memsz) continue;
        uint32_t k = a - paddr;
        win[off] = k < filesz ? src[k] : 0;
      }
    }
    for (unsigned i = 0; i < n; i++) {
      long u = unmap(at[i]);
      if (u != 0) {
        printf("ctl: unmap of %#x failed (%ld)\n", (unsigned)at[i], u);
        return u;
      }
    }
  }
  return 0;
}

/* Loads the payload ELF32 (RISC-V, PT_LOAD segments at their physical addresses). Returns its entry. */
static long load_payload(domid_t dom, uint32_t ram_end, uint32_t *entry) {
  const uint8_t *e = payload_start;
  uint32_t size = (uint32_t)(payload_end - payload_start);
  if (size < 52 || memcmp(e, "\177ELF", 4) != 0 || e[4] != 1 || le16(e + 18) != 243) {
    printf("ctl: payload is not an RV32 ELF\n");
    return -XEN_EINVAL;
  }
  uint32_t phoff = le32(e + 28), phentsize = le16(e + 42), phnum = le16(e + 44);
  if (phentsize < 32 || phoff > size || phnum > (size - phoff) / phentsize) return -XEN_EINVAL;
  unsigned loaded = 0;
  for (uint32_t i = 0; i < phnum; i++) {
    const uint8_t *ph = e + phoff + i * phentsize;
    if (le32(ph) != 1 /* PT_LOAD */) continue;
    uint32_t off = le32(ph + 4), paddr = le32(ph + 12), filesz = le32(ph + 16), memsz = le32(ph + 20);
    if (filesz > memsz || off > size || filesz > size - off || paddr < XENON_RAM_BASE || memsz > ram_end - paddr)
      return -XEN_EINVAL;
    long rc = load_segment(dom, paddr, e + off, filesz, memsz);
    if (rc != 0) return rc;
    loaded++;
  }
  *entry = le32(e + 24);
  printf("ctl: loaded %u segments of the %u-byte payload, entry %#x\n", loaded, (unsigned)size, (unsigned)*entry);
  return 0;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t pages = bootarg_u32("pages", 256);
  uint32_t pool = bootarg_u32("cpupool", 0);
  if (pages < 16 || pages > MAX_PAGES) {
    printf("ctl: pages=%u out of range 16..%u\n", (unsigned)pages, MAX_PAGES);
    return 1;
  }

  struct xen_sysctl sys;
  xen_sysctl_init(&sys, XEN_SYSCTL_physinfo);
  long rc = xen_sysctl(&sys);
  if (rc != 0) {
    printf("ctl: physinfo failed (%ld): not a control domain?\n", rc);
    return 1;
  }
  printf("ctl: host has %u pCPUs, %u of %u MiB free\n", sys.u.physinfo.nr_cpus,
         (unsigned)(sys.u.physinfo.free_pages / 256), (unsigned)(sys.u.physinfo.total_pages / 256));
  if (list_domains("before") < 0) return 1;

  struct xen_domctl op;
  xen_domctl_init(&op, XEN_DOMCTL_createdomain, 0);
  op.u.createdomain.flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap;
  op.u.createdomain.max_vcpus = 1;
  op.u.createdomain.max_evtchn_port = 1023;
  op.u.createdomain.max_grant_frames = -1;
  op.u.createdomain.max_maptrack_frames = -1;
  op.u.createdomain.grant_opts = XEN_DOMCTL_GRANT_version(1);
  op.u.createdomain.cpupool_id = pool;
  rc = xen_domctl(&op);
  if (rc != 0) {
    printf("ctl: createdomain failed (%ld)\n", rc);
    return 1;
  }
  domid_t dom = op.domain;
  printf("ctl: created d%u in cpupool %u\n", dom, (unsigned)pool);

  xen_domctl_init(&op, XEN_DOMCTL_max_mem, dom);
  op.u.max_mem.max_memkb = (uint64_t)pages * 4;
  rc = xen_domctl(&op);
  for (uint32_t i = 0; rc == 0 && i < pages; i++) extents[i] = XENON_RAM_BASE / PAGE + i;
  struct xen_memory_reservation res;
  memset(&res, 0, sizeof res);
  res.extent_start = xen_handle(extents);
  res.nr_extents = pages;
  res.domid = dom;
  long done = rc == 0 ? HYPERVISOR_memory_op(XENMEM_populate_physmap, &res) : rc;
  if (done != (long)pages) {
    printf("ctl: d%u: max_mem %ld, populate_physmap %ld of %u pages\n", dom, rc, done, (unsigned)pages);
    return 1;
  }
  printf("ctl: d%u has %u KiB of RAM at %#x\n", dom, (unsigned)pages * 4, XENON_RAM_BASE);

  uint32_t entry = 0;
  rc = load_payload(dom, XENON_RAM_BASE + pages * PAGE, &entry);
  if (rc != 0) return 1;

  struct vcpu_guest_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.pc = entry;
  ctx.x[10] = 0; /* a0: vCPU id */
  ctx.x[11] = 0; /* a1: no device tree */
  xen_domctl_init(&op, XEN_DOMCTL_setvcpucontext, dom);
  op.u.vcpucontext.vcpu = 0;
  op.u.vcpucontext.ctxt = xen_handle(&ctx);
  rc = xen_domctl(&op);
  if (rc != 0) {
    printf("ctl: setvcpucontext failed (%ld)\n", rc);
    return 1;
  }
  if (list_domains("built") < 0) return 1;

  rc = domctl(XEN_DOMCTL_unpausedomain, dom, &op);
  printf("ctl: unpaused d%u (%ld)\n", dom, rc);
  if (rc != 0) return 1;

  /* Wait until it has shut down (or the host has already cleaned it up). */
  struct xen_domctl_getdomaininfo info;
  long found = 1;
  for (uint32_t spins = 0; spins < 20000000u; spins++) {
    found = domain_info(dom, &info);
    if (found <= 0 || (info.flags & XEN_DOMINF_shutdown)) break;
    xen_yield();
  }
  if (found < 0) {
    printf("ctl: getdomaininfo failed (%ld)\n", found);
    return 1;
  }
  if (found == 1 && !(info.flags & XEN_DOMINF_shutdown)) {
    printf("ctl: d%u did not shut down\n", dom);
    return 1;
  }
  if (found == 1)
    printf("ctl: d%u shut down, reason %u\n", dom, (unsigned)(info.flags >> XEN_DOMINF_shutdownshift & 0xff));
  else
    printf("ctl: d%u shut down and was cleaned up by the host\n", dom);

  for (;;) {
    rc = domctl(XEN_DOMCTL_destroydomain, dom, &op);
    if (rc != -XEN_EAGAIN) break;
    xen_yield();
  }
  printf("ctl: destroyed d%u (%ld)\n", dom, rc);
  if (rc != 0 && rc != -XEN_ESRCH) return 1;
  if (list_domains("after") < 0) return 1;
  printf("ctl: ok\n");
  return 0;
}
