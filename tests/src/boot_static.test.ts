import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GUEST_RAM_BASE_GFN } from "@xenon/hypervisor";
import { buildSystem, planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * Dom0less static memory (`xen,static-mem`, `direct-map`) from a dtc-compiled tree: the domains
 * boot, their P2M maps only the frames the tree gave them (1:1 for the direct-mapped one), and
 * every bad tree is refused before anything runs, naming the node and the property.
 */
const { source, compile, variant } = bootFixture("static.dts");

describe("xenon boot: static memory", () => {
  it("boots heap-backed, static and direct-mapped domains", async () => {
    const r = await runXenon(["boot", compile("static", source)]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (const name of ["heap", "fixed", "direct"])
      assert.match(r.stdout.toString(), new RegExp(`^\\(${name}\\) Hello from Xenon guest, vCPU 0$`, "m"));
  });

  it("with XenStore, static domains take their XenStore page from the heap, not their banks", async () => {
    const r = await runXenon(["boot", "--xenstore", compile("static_xs", source)]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (const name of ["heap", "fixed", "direct"])
      assert.match(r.stdout.toString(), new RegExp(`^\\(${name}\\) Hello from Xenon guest, vCPU 0$`, "m"));
  });

  it("maps each static domain's RAM only from its banks, 1:1 when direct-mapped", async () => {
    const plan = planFromFile(compile("static_plan", source));
    assert.deepEqual(plan.hostRam, [
      { hpa: 0x80000000, bytes: 0x4000000 },
      { hpa: 0x90000000, bytes: 0x4000000 },
    ]);
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const [heap, fixed, direct] = built.domids.map((id) => built.hv.domains.get(id)!);
      const pages = 0x400000 / 4096;
      const mfnsOf = (d: typeof heap) =>
        Array.from({ length: pages }, (_, i) => d!.p2m.get(GUEST_RAM_BASE_GFN + i)?.mfn ?? -1);
      const inBanks = (mfn: number, banks: Array<[number, number]>) =>
        banks.some(([a, n]) => mfn >= a / 4096 && mfn < (a + n) / 4096);
      const fixedBanks: Array<[number, number]> = [
        [0x90200000, 0x200000],
        [0x90800000, 0x200000],
      ];
      assert.ok(
        mfnsOf(fixed).every((m) => inBanks(m, fixedBanks)),
        "fixed: only its two banks",
      );
      assert.equal(new Set(mfnsOf(fixed)).size, pages);
      assert.ok(
        mfnsOf(direct).every((m, i) => m === GUEST_RAM_BASE_GFN + i),
        "direct: gfn == mfn",
      );
      const staticBanks: Array<[number, number]> = [...fixedBanks, [0x80000000, 0x400000]];
      const hostBanks: Array<[number, number]> = [
        [0x80000000, 0x4000000],
        [0x90000000, 0x4000000],
      ];
      assert.ok(
        mfnsOf(heap).every((m) => m >= 0 && !inBanks(m, staticBanks) && inBanks(m, hostBanks)),
        "heap: host RAM outside static banks and holes",
      );
    } finally {
      await built.machine.close();
    }
  });

  const refusals: Array<[string, string, string, RegExp]> = [
    [
      "overlapping static banks",
      "0x90800000 0x00200000>",
      "0x90100000 0x00200000>",
      /\/chosen\/fixed: xen,static-mem: bank \[0x90100000, \+0x200000\) overlaps \/chosen\/fixed: xen,static-mem \[0x90200000/,
    ],
    [
      "a bank across domains",
      "<0x0 0x80000000 0x0 0x00400000>",
      "<0x0 0x90000000 0x0 0x00400000>",
      /\/chosen\/direct: xen,static-mem: bank \[0x90000000, \+0x400000\) overlaps \/chosen\/fixed: xen,static-mem/,
    ],
    [
      "a bank in the host's memory hole",
      "0x90800000 0x00200000>",
      "0x8e000000 0x00200000>",
      /\/chosen\/fixed: xen,static-mem: bank \[0x8e000000, \+0x200000\) is outside host RAM/,
    ],
    [
      "banks that do not sum to memory",
      "0x90800000 0x00200000>",
      "0x90800000 0x00100000>",
      /\/chosen\/fixed: xen,static-mem: banks hold 3072 KiB but memory is 4096 KiB/,
    ],
    [
      "direct-map without static memory",
      "xen,static-mem = <0x0 0x80000000 0x0 0x00400000>;",
      "",
      /\/chosen\/direct: direct-map: needs xen,static-mem/,
    ],
    [
      "a direct-mapped bank that does not hold the kernel",
      "<0x0 0x80000000 0x0 0x00400000>",
      "<0x0 0x81000000 0x0 0x00400000>",
      /\/chosen\/direct: direct-map: the kernel loads at \[0x80000000, .*which no xen,static-mem bank holds/,
    ],
    [
      "a misaligned bank",
      "0x90800000 0x00200000>",
      "0x90800800 0x00200000>",
      /\/chosen\/fixed: xen,static-mem: bank \[0x90800800, \+0x200000\) is empty or not 4 KiB aligned/,
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
