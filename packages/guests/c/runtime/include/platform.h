/*
 * What the device tree tells a Xenon guest about its platform (packages/hypervisor/src/guest_fdt.ts
 * writes it): domain id, RAM, time base, boot arguments and the /hypervisor node's window, a
 * guest-physical range below RAM that nothing populates, where the guest places shared_info, its
 * grant-table frames and the grant mappings it makes.
 */
#ifndef XENON_PLATFORM_H
#define XENON_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

struct xen_platform {
  unsigned boot_vcpu;
  uint32_t domid;         /* /chosen/xenon,domid; DOMID_SELF when absent */
  uint32_t ram_base;      /* /memory reg */
  uint64_t ram_size;
  const void *fdt;        /* the blob (NULL without one); read-only */
  uint32_t fdt_size;
  uint32_t window_base;   /* /hypervisor reg; 0 when absent */
  uint32_t window_size;
  uint32_t upcall_irq;    /* /hypervisor xenon,upcall-irq (9) */
  uint32_t timebase_hz;   /* /cpus timebase-frequency (10 MHz) */
  int xen;                /* /hypervisor is compatible with "xen,xen" */
  const char *bootargs;   /* /chosen/bootargs ("" when absent) */
  const char *name;       /* domain name from the root's model "Xenon guest <name>" ("" when absent) */
};

extern struct xen_platform xen_platform;

/*
 * Runtime set-up every image calls first from main: installs the trap vector, reads the device
 * tree (falling back to defaults for what is missing: 4 MiB of RAM, 10 MHz, no window), hands the
 * RAM between the end of the image (boot stack included) and the device tree to the heap, and
 * parses the boot arguments. Returns 0, or a negative FDT_E_* error after printing it (the
 * defaults are then in effect).
 */
int xenon_init(unsigned vcpu_id, void *fdt);

/*
 * `pages` consecutive free guest-physical pages in the /hypervisor window, as an address; 0 when
 * the window has no room (or does not exist). Bump allocation: pages are never handed back, so a
 * gfn is never reused for a second mapping while a stale TLB entry could still name it.
 */
uint32_t xen_window_alloc(unsigned pages);

/* Linker-script symbols bounding the image. */
extern char __image_start[], __text_end[], __rodata_start[], __rodata_end[], __bss_start[], __bss_end[],
    __stack_top[], _end[];

#endif
