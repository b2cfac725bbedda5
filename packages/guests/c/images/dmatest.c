/*
 * dmatest: drives a DMA engine passed through to this domain (dom0less /passthrough, behind the
 * host IOMMU). It finds the device in its tree (compatible "xenon,dma-engine": reg = its
 * registers, interrupts = its event-channel port), copies patterned buffers of its own RAM with
 * it — guest-physical addresses are the device's I/O addresses — and checks every byte and the
 * completion interrupt. Then it aims the device outside its own memory (a hole below RAM, the
 * first page past its RAM, the last page of a 4 GiB space): each transfer must fault in the IOMMU
 * with the address latched, and move nothing.
 *
 *   bootargs: rounds=N (4) bytes=N (8192, at most 65536)
 *
 * Prints `dmatest: device at A irq P id I`, `dmatest: round R copied N bytes ok`, one
 * `dmatest: dma to A faulted at F` per stray target, then `dmatest: done R rounds, F faults, E errors`.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "fdt.h"
#include "trap.h"
#include "xenon.h"

#define REG_ID 0x00
#define REG_SRC_LO 0x04
#define REG_SRC_HI 0x08
#define REG_DST_LO 0x0c
#define REG_DST_HI 0x10
#define REG_LEN 0x14
#define REG_CTRL 0x18
#define REG_STATUS 0x1c
#define REG_FAULT_LO 0x20
#define CTRL_START 1u
#define CTRL_IRQ_EN 2u
#define STATUS_DONE 1u
#define STATUS_FAULT 2u
#define DMA_ID 0x414d4458u
#define MAX_BYTES 65536u

static uint8_t src[MAX_BYTES] __attribute__((aligned(4096)));
static uint8_t dst[MAX_BYTES] __attribute__((aligned(4096)));
static volatile uint32_t *regs;
static volatile uint32_t irqs;

static void on_irq(evtchn_port_t port, void *arg) {
  (void)port;
  (void)arg;
  irqs++;
}

static uint32_t rd(uint32_t off) { return regs[off / 4]; }
static void wr(uint32_t off, uint32_t v) { regs[off / 4] = v; }

static uint32_t dma(uint32_t from, uint32_t to, uint32_t len) {
  wr(REG_STATUS, 0);
  wr(REG_SRC_LO, from);
  wr(REG_SRC_HI, 0);
  wr(REG_DST_LO, to);
  wr(REG_DST_HI, 0);
  wr(REG_LEN, len);
  wr(REG_CTRL, CTRL_START | CTRL_IRQ_EN);
  return rd(REG_STATUS);
}

/* The first xenon,dma-engine node under the root: its register window and interrupt port. */
static int find_device(uint32_t *base, uint32_t *port) {
  struct fdt f;
  if (xen_platform.fdt == NULL || fdt_open(&f, xen_platform.fdt, xen_platform.fdt_size) < 0) return -1;
  int root = fdt_root(&f);
  for (int n = fdt_first_subnode(&f, root); n >= 0; n = fdt_next_subnode(&f, n)) {
    const char *compat;
    if (fdt_get_string(&f, n, "compatible", &compat) < 0 || strcmp(compat, "xenon,dma-engine") != 0) continue;
    uint64_t a, s;
    if (fdt_get_reg(&f, root, n, 0, &a, &s) < 0) return -2;
    if (fdt_get_u32(&f, n, "interrupts", port) < 0) return -3;
    *base = (uint32_t)a;
    return 0;
  }
  return -4;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t base = 0, port = 0;
  int rc = find_device(&base, &port);
  if (rc < 0) {
    printf("dmatest: FAILED no xenon,dma-engine in the device tree (%d)\n", rc);
    return 1;
  }
  regs = (volatile uint32_t *)(uintptr_t)base;
  printf("dmatest: device at %#x irq %u id %#x\n", (unsigned)base, (unsigned)port, (unsigned)rd(REG_ID));
  if (rd(REG_ID) != DMA_ID) return 1;
  if (events_init(vcpu_id) < 0 || evtchn_bind_handler(port, on_irq, NULL) < 0) {
    printf("dmatest: FAILED cannot take the device's interrupt\n");
    return 1;
  }
  irq_enable();

  uint32_t rounds = bootarg_u32("rounds", 4);
  uint32_t bytes = bootarg_u32("bytes", 8192);
  if (bytes == 0 || bytes > MAX_BYTES) bytes = MAX_BYTES;
  unsigned errors = 0, faults = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    for (uint32_t i = 0; i < bytes; i++) src[i] = (uint8_t)(i * 7 + r * 13 + 1);
    memset(dst, 0, bytes);
    uint32_t before = irqs;
    uint32_t st = dma((uint32_t)(uintptr_t)src, (uint32_t)(uintptr_t)dst, bytes);
    unsigned bad = 0;
    for (uint32_t i = 0; i < bytes; i++) bad += dst[i] != src[i];
    for (int spin = 0; irqs == before && spin < 100000; spin++) __asm__ volatile("nop");
    if (st != STATUS_DONE || bad != 0 || irqs == before) {
      printf("dmatest: round %u status %u, %u bytes wrong, irq %s\n", (unsigned)r, (unsigned)st, bad,
             irqs == before ? "missing" : "ok");
      errors++;
    } else {
      printf("dmatest: round %u copied %u bytes ok\n", (unsigned)r, (unsigned)bytes);
    }
  }

  /* Outside this domain's memory: each must fault and leave our buffer as it was. */
  uint32_t ram_end = xen_platform.ram_base + (uint32_t)xen_platform.ram_size;
  const uint32_t stray[] = {0x1000u, ram_end, 0xfffff000u};
  for (unsigned k = 0; k < sizeof stray / sizeof stray[0]; k++) {
    memset(dst, 0xee, 64);
    uint32_t st = dma(stray[k], (uint32_t)(uintptr_t)dst, 64);
    uint32_t at = rd(REG_FAULT_LO);
    unsigned touched = 0;
    for (int i = 0; i < 64; i++) touched += dst[i] != 0xee;
    if (st == STATUS_FAULT && at == stray[k] && touched == 0) {
      printf("dmatest: dma from %#x faulted at %#x\n", (unsigned)stray[k], (unsigned)at);
      faults++;
    } else {
      printf("dmatest: dma from %#x NOT refused (status %u at %#x, %u bytes moved)\n", (unsigned)stray[k],
             (unsigned)st, (unsigned)at, touched);
      errors++;
    }
    st = dma((uint32_t)(uintptr_t)src, stray[k], 64);
    at = rd(REG_FAULT_LO);
    if (st == STATUS_FAULT && at == stray[k]) {
      printf("dmatest: dma to %#x faulted at %#x\n", (unsigned)stray[k], (unsigned)at);
      faults++;
    } else {
      printf("dmatest: dma to %#x NOT refused (status %u at %#x)\n", (unsigned)stray[k], (unsigned)st, (unsigned)at);
      errors++;
    }
  }
  printf("dmatest: done %u rounds, %u faults, %u errors\n", (unsigned)rounds, faults, errors);
  return errors == 0 ? 0 : 1;
}
