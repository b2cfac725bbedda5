import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildGuestFdt, GUEST_RAM_BASE_GFN, P2mType } from "@xenon/hypervisor";
import { buildSystem, planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * Dom0less static shared memory (`xen,domain-shared-memory-v1`) and the static heap
 * (`xen,static-heap`) from a dtc-compiled tree: shmem.elf's owner writes, its borrower reads the
 * same frames at another guest address; the guest finds the region in its device tree as Xen
 * describes it; the hypervisor allocates only from the heap; bad trees are refused at once.
 */
const { source, compile, variant, dir } = bootFixture("shm.dts");

describe("xenon boot: static shared memory and the static heap", () => {
  it("the owner writes, the borrower reads the same frames at its own address", async () => {
    const r = await runXenon(["boot", compile("shm", source)]);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, r.stderr.toString() + out);
    assert.match(out, /^\(owner\) shmem: owner of 'ab-link' at 0x70000000, 64 KiB$/m);
    assert.match(out, /^\(borrower\) shmem: borrower of 'ab-link' at 0x60000000, 64 KiB$/m);
    assert.match(out, /^\(borrower\) shmem: borrower read 1024 words, pattern ok$/m);
    assert.match(out, /^\(owner\) shmem: owner saw the borrower's answer 0x[0-9a-f]+$/m);
    assert.match(out, /^\(keeper\) Hello from Xenon guest, vCPU 0$/m);
  });

  it("maps the region into both P2Ms and allocates only from the static heap", async () => {
    const plan = planFromFile(compile("shm_plan", source));
    assert.deepEqual(plan.staticHeap, [{ hpa: 0x87000000, bytes: 0x1000000 }]);
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const [owner, borrower, keeper] = built.domids.map((id) => built.hv.domains.get(id)!);
      for (const [d, gfn] of [
        [owner!, 0x70000],
        [borrower!, 0x60000],
      ] as const) {
        for (let i = 0; i < 16; i++) {
          const e = d.p2m.get(gfn + i);
          assert.equal(e?.mfn, 0x84000 + i);
          assert.equal(e?.type, P2mType.static_shared_rw);
        }
        assert.equal(d.p2m.get(gfn + 16), null, "nothing past the region");
      }
      const inHeap = (mfn: number) => mfn >= 0x87000 && mfn < 0x88000;
      for (const d of [owner!, borrower!]) {
        for (let i = 0; i < 1024; i++) assert.ok(inHeap(d.p2m.get(GUEST_RAM_BASE_GFN + i)!.mfn), "RAM from the heap");
      }
      for (const d of [owner!, borrower!, keeper!]) assert.ok(inHeap(d.sharedInfoMfn), "shared_info from the heap");
      const k = keeper!.p2m.get(GUEST_RAM_BASE_GFN)!.mfn;
      assert.ok(k >= 0x85000 && k < 0x85400, "static memory, not the heap");
    } finally {
      await built.machine.close();
    }
  });

  it("writes the region into the guest's tree as Xen does, and dtc reads it back", () => {
    const blob = buildGuestFdt({
      domid: 1,
      name: "g",
      vcpus: 1,
      ramBytes: 0x400000,
      sharedMemory: [{ id: "ab-link", gpa: 0x70000000, bytes: 0x10000 }],
    });
    const file = join(dir, "guest.dtb");
    writeFileSync(file, blob);
    const r = spawnSync("dtc", ["-q", "-I", "dtb", "-O", "dts", file], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const node = /reserved-memory \{([\s\S]*?)\n\t\};/.exec(r.stdout)?.[1] ?? "";
    assert.match(node, /#address-cells = <0x02>;/);
    assert.match(node, /ranges;/);
    assert.match(node, /xen-shmem@70000000 \{/);
    assert.match(node, /compatible = "xen,shared-memory-v1";/);
    assert.match(node, /reg = <0x00 0x70000000 0x00 0x10000>;/);
    assert.match(node, /xen,id = "ab-link";/);
    assert.match(node, /xen,offset = <0x00 0x00>;/);
  });

  const refusals: Array<[string, string, string, RegExp]> = [
    [
      "an id of 16 characters",
      'role = "owner";\n                xen,shm-id = "ab-link";',
      'role = "owner";\n                xen,shm-id = "0123456789abcdef";',
      /\/chosen\/owner\/shm@84000000: xen,shm-id: '0123456789abcdef' must be 1 to 15 characters/,
    ],
    [
      "one id on two host ranges",
      "<0x84000000 0x60000000 0x00010000>",
      "<0x84100000 0x60000000 0x00010000>",
      /\/chosen\/borrower\/shm@84000000: xen,shared-mem: region 'ab-link' is \[0x84100000, \+0x10000\) here but \[0x84000000, \+0x10000\) in \/chosen\/owner\/shm@84000000/,
    ],
    [
      "two owners",
      'role = "borrower";',
      'role = "owner";',
      /\/chosen\/borrower\/shm@84000000: role: region 'ab-link' already has an owner \(\/chosen\/owner\/shm@84000000\)/,
    ],
    [
      "an unknown role",
      'role = "borrower";',
      'role = "lender";',
      /\/chosen\/borrower\/shm@84000000: role: 'lender' is neither owner nor borrower/,
    ],
    [
      "a guest address inside the domain's RAM",
      "<0x84000000 0x60000000 0x00010000>",
      "<0x84000000 0x80100000 0x00010000>",
      /\/chosen\/borrower\/shm@84000000: xen,shared-mem: guest range \[0x80100000, \+0x10000\) overlaps the domain's RAM/,
    ],
    [
      "a region over another domain's static memory",
      "xen,static-mem = <0x85000000 0x00400000>;",
      "xen,static-mem = <0x83f00000 0x00400000>;",
      /\/chosen\/keeper: xen,static-mem: bank \[0x83f00000, \+0x400000\) overlaps \/chosen\/owner\/shm@84000000: xen,shared-mem/,
    ],
    [
      "a static heap over static memory",
      "xen,static-heap = <0x0 0x87000000 0x0 0x01000000>;",
      "xen,static-heap = <0x0 0x85000000 0x0 0x01000000>;",
      /\/chosen: xen,static-heap: bank \[0x85000000, \+0x1000000\) overlaps \/chosen\/keeper: xen,static-mem/,
    ],
    [
      "a static heap too small for the domains",
      "xen,static-heap = <0x0 0x87000000 0x0 0x01000000>;",
      "xen,static-heap = <0x0 0x87000000 0x0 0x00400000>;",
      /\/chosen: xen,static-heap: domains need \d+ pages from the heap .*, it holds 1024/,
    ],
    [
      "a static heap not 64 KiB aligned",
      "xen,static-heap = <0x0 0x87000000 0x0 0x01000000>;",
      "xen,static-heap = <0x0 0x87001000 0x0 0x01000000>;",
      /\/chosen: xen,static-heap: bank \[0x87001000, \+0x1000000\) is not 64 KiB aligned/,
    ],
    [
      "dom0's shared memory without a range",
      "        owner {",
      '        dom0-shm { compatible = "xen,domain-shared-memory-v1"; xen,shm-id = "x"; };\n        owner {',
      /\/chosen\/dom0-shm: xen,shared-mem: missing/,
    ],
  ];
  for (const [name, from, to, message] of refusals) {
    it(`refuses ${name}, naming the node and property`, async () => {
      const r = await runXenon(["boot", compile(name.replace(/\W+/g, "_"), variant(from, to))]);
      assert.equal(r.status, 1, `status ${r.status}: ${r.stdout}`);
      assert.match(r.stderr.toString(), message);
      assert.equal(r.stdout.toString(), "", "nothing ran");
    });
  }
});
