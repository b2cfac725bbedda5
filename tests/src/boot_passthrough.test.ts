import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildSystem, planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * A host DMA engine passed through to a dom0less guest (its tree's multiboot,device-tree module):
 * the guest drives it with its own guest-physical addresses; the IOMMU confines its DMA to the
 * guest's RAM (superpages over static memory); everything else faults. Every refusal names the
 * node and property.
 */
const fixture = bootFixture("passthrough.dts");
const partialSource = readFileSync(
  fileURLToPath(new URL("../fixtures/boot/passthrough-partial.dts", import.meta.url)),
  "utf8",
);
const partial = (dts = partialSource) => fixture.compile("dma-pt", dts);

describe("xenon boot: a device passed through behind the IOMMU", () => {
  it("plans the host's device and the domain's window, port and host node", () => {
    partial();
    const plan = planFromFile(fixture.compile("plan"));
    assert.deepEqual(plan.hostDevices, [
      { path: "/soc/dma@10000000", compatible: "xenon,dma-engine", base: 0x1000_0000, size: 0x1000 },
    ]);
    assert.deepEqual(plan.domains[0]!.passthrough, [
      {
        hostPath: "/soc/dma@10000000",
        name: "dma",
        compatible: "xenon,dma-engine",
        guestBase: 0x2000_0000,
        size: 0x1000,
        guestIrqPort: 40,
      },
    ]);
    assert.equal(plan.domains[1]!.passthrough, undefined);
  });

  it("maps the static-memory guest's RAM with 2 MiB superpages", async () => {
    partial();
    const plan = planFromFile(fixture.compile("pages"));
    const sys = buildSystem({
      domains: plan.domains,
      pools: plan.pools,
      hostDevices: plan.hostDevices,
      hostRam: plan.hostRam,
      console: () => {},
    });
    try {
      assert.deepEqual(sys.hv.passthrough.iommuPages(sys.domids[0]!), { pages4k: 0, pages2m: 2, pages1g: 0 });
      assert.equal(sys.hv.passthrough.iommuPages(sys.domids[1]!), null, "the bystander has no device");
      assert.equal(sys.hv.passthrough.list()[0]!.domid, sys.domids[0]);
    } finally {
      await sys.machine.close();
    }
  });

  it("the guest copies through the device, and every DMA outside its memory faults", async () => {
    partial();
    const r = await runXenon(["boot", fixture.compile("system")], 120_000);
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr}`;
    assert.equal(r.status, 0, why);
    assert.match(out, /^\(dma_user\) dmatest: device at 0x20000000 irq 40 id 0x414d4458$/m, why);
    for (let i = 0; i < 3; i++)
      assert.match(out, new RegExp(`^\\(dma_user\\) dmatest: round ${i} copied 16384 bytes ok$`, "m"), why);
    for (const a of ["0x1000", "0x80400000", "0xfffff000"]) {
      assert.match(out, new RegExp(`^\\(dma_user\\) dmatest: dma from ${a} faulted at ${a}$`, "m"), why);
      assert.match(out, new RegExp(`^\\(dma_user\\) dmatest: dma to ${a} faulted at ${a}$`, "m"), why);
    }
    assert.match(out, /^\(dma_user\) dmatest: done 3 rounds, 6 faults, 0 errors$/m, why);
    assert.match(out, /^\(bystander\) Hello from Xenon guest/m, why);
  });

  it("refuses bad passthrough at plan time, naming the node and property", () => {
    const refuse = (dts: string, partialDts: string, re: RegExp) => {
      partial(partialDts);
      assert.throws(() => planFromFile(fixture.compile("bad", dts)), re);
    };
    const pv = (from: string, to: string) => {
      assert.ok(partialSource.includes(from), from);
      return partialSource.replace(from, to);
    };
    refuse(
      fixture.source,
      pv('xen,path = "/soc/dma@10000000";', 'xen,path = "/soc/dma@30000000";'),
      /dma-pt.dtb:\/passthrough\/dma@20000000: xen,path: no passthrough-capable device at \/soc\/dma@30000000/,
    );
    refuse(
      fixture.source,
      pv("xen,reg = <0x0 0x10000000 0x0 0x1000", "xen,reg = <0x0 0x10001000 0x0 0x1000"),
      /xen,reg: host window \[0x10001000, \+0x1000\) is not \/soc\/dma@10000000's/,
    );
    refuse(
      fixture.source,
      pv("reg = <0x0 0x20000000 0x0 0x1000>;", "reg = <0x0 0x20001000 0x0 0x1000>;"),
      /dma@20000000: reg: must be the guest window of xen,reg/,
    );
    refuse(
      fixture.source,
      pv("0x0 0x1000 0x0 0x20000000>", "0x0 0x1000 0x0 0x80000000>").replace(
        "reg = <0x0 0x20000000",
        "reg = <0x0 0x80000000",
      ),
      /reg: the guest window overlaps the domain's RAM/,
    );
    refuse(fixture.source, pv("interrupts = <40>;", ""), /interrupts: missing: the guest's event-channel port/);
    refuse(
      fixture.variant('xenon,path = "dma-pt.dtb";', 'xenon,path = "nothere.dtb";'),
      partialSource,
      /\/chosen\/dma_user\/passthrough: xenon,path: partial device tree 'nothere.dtb' not found beside the tree/,
    );
    // One device, two domains.
    refuse(
      fixture.variant(
        'xenon,path = "hello.elf";\n            };',
        'xenon,path = "hello.elf";\n            };\n            passthrough {\n                compatible = "multiboot,device-tree", "multiboot,module";\n                xenon,path = "dma-pt.dtb";\n            };',
      ),
      partialSource,
      /xen,path: \/soc\/dma@10000000 is already passed through to \/chosen\/dma_user/,
    );
  });
});
