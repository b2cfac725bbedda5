import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { VirtioNetHdr } from "@xenon/backends";
import { layout } from "@xenon/hypervisor";

/**
 * The guest ABI is declared twice — TypeScript layouts in the hypervisor (public/layout.ts), C
 * structs in the guest runtime (c/runtime/include/xen.h) — so they are checked against each
 * other: every TS struct and field becomes a _Static_assert on the C side (size, offset and
 * field width), compiled for rv32imac/ilp32 exactly as guest images are. A mismatch fails the
 * compile with the struct and field named.
 */
const INCLUDE = fileURLToPath(new URL("../../packages/guests/c/runtime/include", import.meta.url));
const FIELD_BYTES: Record<string, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8, i64: 8 };
/**
 * TS flattens nested structs and unions into one field name; the C member path for those.
 * A null width means "check the offset only" (the TS field stands for a whole sub-struct).
 */
const C_MEMBER: Record<string, string> = {
  source_ref: "source.u.ref",
  source_gmfn: "source.u.gmfn",
  source_domid: "source.domid",
  source_offset: "source.offset",
  dest_ref: "dest.u.ref",
  dest_gmfn: "dest.u.gmfn",
  dest_domid: "dest.domid",
  dest_offset: "dest.offset",
  u_dom: "u.unbound.dom",
  u_word: "u.virq",
  interdomain_port: "u.interdomain.port",
  time_version: "time.version",
  time_tsc_timestamp: "time.tsc_timestamp",
  time_system_time: "time.system_time",
  time_tsc_to_system_mul: "time.tsc_to_system_mul",
  time_tsc_shift: "time.tsc_shift",
  time_flags: "time.flags",
  vcpu_info0: "vcpu_info[0]",
  arch_gic_version: "arch.gic_version",
  arch_tee_type: "arch.tee_type",
  arch_nr_spis: "arch.nr_spis",
  arch_clock_frequency: "arch.clock_frequency",
  arch_config_gic_version: "arch_config.gic_version",
  arch_config_tee_type: "arch_config.tee_type",
  arch_config_nr_spis: "arch_config.nr_spis",
  arch_config_clock_frequency: "arch_config.clock_frequency",
  cpumap_hard_bitmap: "cpumap_hard.bitmap",
  cpumap_hard_nr_bits: "cpumap_hard.nr_bits",
  cpumap_soft_bitmap: "cpumap_soft.bitmap",
  cpumap_soft_nr_bits: "cpumap_soft.nr_bits",
  cpumap_bitmap: "cpumap.bitmap",
  cpumap_nr_bits: "cpumap.nr_bits",
  x: "x[0]",
  foreign_domid: "u.foreign_domid",
  credit2_weight: "u.credit2.weight",
  credit2_cap: "u.credit2.cap",
  rtds_period: "u.rtds.period",
  rtds_budget: "u.rtds.budget",
  rtds_flags: "u.rtds.flags",
  v_vcpus: "u.v.vcpus",
  v_nr_vcpus: "u.v.nr_vcpus",
  hw_cap0: "hw_cap[0]",
  sched_credit2_ratelimit_us: "u.sched_credit2.ratelimit_us",
};
// Arrays: TS names their first element.
const OFFSET_ONLY = new Set(["vcpu_info0", "evtchn_pending", "evtchn_mask", "req", "rsp"]);
/** TS layouts whose C side is not a struct of the same name. */
const C_NAME: Record<string, string | null> = { domid_t: null, evtchn_port: "evtchn_port_arg" };

interface Layout {
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<string, { readonly offset: number; readonly type: string }>>;
}

function isLayout(v: unknown): v is Layout {
  return typeof v === "object" && v !== null && "name" in v && "size" in v && "fields" in v;
}

test("every TypeScript ABI layout matches the guest runtime's C struct byte for byte", () => {
  const layouts = (Object.values(layout) as unknown[]).filter(isLayout);
  assert.ok(layouts.length >= 25, `only ${layouts.length} layouts found`);
  const lines = ["#include <stddef.h>", '#include "xen.h"'];
  let checks = 0;
  for (const l of layouts) {
    const cName = l.name in C_NAME ? C_NAME[l.name] : l.name;
    if (cName === null || cName === undefined) continue;
    lines.push(`_Static_assert(sizeof(struct ${cName}) == ${l.size}, "sizeof(struct ${cName}) != ${l.size}");`);
    checks++;
    for (const [field, spec] of Object.entries(l.fields)) {
      const member = C_MEMBER[field] ?? field;
      lines.push(
        `_Static_assert(offsetof(struct ${cName}, ${member}) == ${spec.offset}, "${cName}.${member}: offset != ${spec.offset}");`,
      );
      checks++;
      if (OFFSET_ONLY.has(field)) continue;
      lines.push(
        `_Static_assert(sizeof(((struct ${cName} *)0)->${member}) == ${FIELD_BYTES[spec.type]}, "${cName}.${member}: width != ${FIELD_BYTES[spec.type]}");`,
      );
      checks++;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "xenon-abi-"));
  const file = join(dir, "abi_check.c");
  writeFileSync(file, `${lines.join("\n")}\n`);
  const r = spawnSync(
    "clang",
    [
      "--target=riscv32-unknown-elf",
      "-march=rv32imac",
      "-mabi=ilp32",
      "-ffreestanding",
      "-fsyntax-only",
      "-ferror-limit=0",
      "-I",
      INCLUDE,
      file,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.error, undefined, `clang could not run: ${r.error}`);
  assert.equal(r.status, 0, `C and TypeScript layouts disagree (${checks} checks):\n${r.stderr}`);
});

test("virtio_net_hdr: the net device's layout matches the guest runtime's C struct byte for byte", () => {
  const l = VirtioNetHdr;
  const lines = ["#include <stddef.h>", '#include "virtio_net.h"'];
  lines.push(`_Static_assert(sizeof(struct ${l.name}) == ${l.size}, "sizeof(struct ${l.name}) != ${l.size}");`);
  for (const [field, spec] of Object.entries(l.fields)) {
    lines.push(`_Static_assert(offsetof(struct ${l.name}, ${field}) == ${spec.offset}, "${field}: offset");`);
    lines.push(
      `_Static_assert(sizeof(((struct ${l.name} *)0)->${field}) == ${FIELD_BYTES[spec.type]}, "${field}: width");`,
    );
  }
  assert.equal(Object.keys(l.fields).length, 7);
  const dir = mkdtempSync(join(tmpdir(), "xenon-abi-"));
  const file = join(dir, "net_hdr_check.c");
  writeFileSync(file, `${lines.join("\n")}\n`);
  const r = spawnSync(
    "clang",
    [
      "--target=riscv32-unknown-elf",
      "-march=rv32imac",
      "-mabi=ilp32",
      "-ffreestanding",
      "-fsyntax-only",
      "-I",
      INCLUDE,
      file,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.error, undefined, `clang could not run: ${r.error}`);
  assert.equal(r.status, 0, `virtio_net_hdr: C and TypeScript disagree:\n${r.stderr}`);
});
