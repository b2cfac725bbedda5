/**
 * Compatibility with dtc: every fixture is compiled by dtc, read by us, checked, and re-written
 * by us byte for byte; trees we build are accepted and decompiled by dtc; random trees written by
 * us equal what dtc makes of the same source.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFdt, readFdtWithHeader } from "./reader.js";
import {
  dtbToDts,
  dtc,
  dtcVersion,
  dtsToDtb,
  fixtureNames,
  fixturePath,
  NO_DTC,
  prng,
  readFixture,
} from "./test_support.js";
import { Fdt, type FdtNode } from "./tree.js";
import { bytes, decodeReg, empty, readCells, readU32Array, regValue, str, strList, u32, u64 } from "./values.js";
import { writeFdt } from "./writer.js";

const skip = dtcVersion() === undefined ? NO_DTC : false;

const compile = (name: string): Buffer => dtc(["-I", "dts", "-O", "dtb", "-o", "-", fixturePath(name)]);

/** Fixture-specific checks of the values our reader produces. */
const checks: Record<string, (fdt: Fdt) => void> = {
  "guest.dts": (fdt) => {
    assert.equal(fdt.bootCpuidPhys, 0);
    assert.equal(fdt.getNode("/chosen").getString("bootargs"), "console=hvc0 earlycon=sbi");
    assert.deepEqual(fdt.getNode("/chosen").get("xen,uefi-cfg-load"), empty());
    assert.deepEqual(fdt.reg("/memory@80000000"), [{ address: 0x80000000n, size: 0x10000000n }]);
    assert.deepEqual(fdt.reg("/memory"), [{ address: 0x80000000n, size: 0x10000000n }]);
    const cpus = fdt.getNode("/cpus");
    assert.deepEqual(
      cpus.children.map((c) => c.name),
      ["cpu@0", "cpu@1"],
    );
    assert.equal(fdt.findNode("/cpus/cpu"), cpus.children[0]);
    assert.deepEqual(fdt.reg("/cpus/cpu@1"), [{ address: 1n, size: 0n }]);
    assert.equal(fdt.getNode("/cpus/cpu@1").getString("riscv,isa"), "rv32imac_zicsr_zifencei");
    assert.equal(cpus.getU32("timebase-frequency"), 10_000_000);
    const hyp = fdt.getNode("/hypervisor");
    assert.deepEqual(hyp.getStringList("compatible"), ["xen,xen-4.17", "xen,xen"]);
    assert.deepEqual(fdt.reg("/hypervisor"), [{ address: 0x38000000n, size: 0x01000000n }]);
    const [intcPh, irq] = hyp.getU32Array("interrupts-extended")!;
    assert.equal(fdt.nodeByPhandle(intcPh!), fdt.getNode("/cpus/cpu@0/interrupt-controller"));
    assert.equal(irq, 9);
    // Aliases: a property holding a path, and a label reference compiled to one.
    assert.equal(fdt.findNode("serial0"), fdt.getNode("/soc/serial@10000000"));
    assert.equal(fdt.findNode("hyp"), hyp);
    const uart = fdt.getNode("serial0");
    assert.equal(fdt.resolvePhandles(uart, "interrupt-parent")[0], fdt.getNode("/soc/interrupt-controller@c000000"));
    assert.equal(fdt.pathOf(uart), "/soc/serial@10000000");
  },

  "dom0less.dts": (fdt) => {
    const chosen = fdt.getNode("/chosen");
    assert.equal(chosen.getString("xen,xen-bootargs"), "console=dtuart dtuart=serial0 sched=credit2");
    // xen,static-heap is in the root's cells (2+2), not /chosen's.
    assert.deepEqual(decodeReg(chosen.require("xen,static-heap"), fdt.root.addressCells(), fdt.root.sizeCells()), [
      { address: 0xa0000000n, size: 0x10000000n },
    ]);
    assert.deepEqual(fdt.reg("/memory@80000000"), [{ address: 0x80000000n, size: 0x100000000n }]);
    const domains = chosen.children.filter((c) => c.getStringList("compatible")?.includes("xen,domain"));
    assert.deepEqual(
      domains.map((d) => d.name),
      ["guest1", "guest2", "rtguest"],
    );
    const g1 = domains[0]!;
    assert.equal(g1.getU64("memory"), 0x40000n);
    assert.equal(g1.getU32("cpus"), 2);
    assert.equal(g1.get("vpl011")?.length, 0);
    assert.equal(g1.getString("xen,enhanced"), "enabled");
    assert.deepEqual(fdt.reg("/chosen/guest1/module@60000000"), [{ address: 0x60000000n, size: 0x01000000n }]);
    assert.equal(fdt.getNode("/chosen/guest1/module@60000000").getString("bootargs"), "console=ttyAMA0 root=/dev/ram0");
    assert.deepEqual(fdt.getNode("/chosen/guest1/module@61000000").getStringList("compatible"), [
      "multiboot,ramdisk",
      "multiboot,module",
    ]);
    const g2 = domains[1]!;
    const staticMem = decodeReg(g2.require("xen,static-mem"), g2.addressCells(), g2.sizeCells());
    assert.deepEqual(staticMem, [{ address: 0x70000000n, size: 0x08000000n }]);
    // memory (KiB) must equal the static-mem total.
    assert.equal(g2.getU64("memory")! * 1024n, staticMem[0]!.size);
    assert.ok(g2.has("direct-map"));
    // Cpupools: phandle lists to cpu nodes, and a domain pointing at its pool.
    const rt = fdt.getNode("/chosen/pool_rt");
    assert.deepEqual(
      fdt.resolvePhandles(rt, "cpupool-cpus").map((n) => fdt.pathOf(n)),
      ["/cpus/cpu@2", "/cpus/cpu@3"],
    );
    assert.ok(fdt.resolvePhandles(rt, "cpupool-cpus").every((n) => n.getString("device_type") === "cpu"));
    assert.equal(rt.getString("cpupool-sched"), "null");
    assert.equal(fdt.getNode("/chosen/pool_gp").has("cpupool-sched"), false);
    assert.equal(fdt.resolvePhandles(domains[2]!, "domain-cpupool")[0], rt);
    assert.equal(fdt.resolvePhandles(g1, "domain-cpupool")[0], fdt.getNode("/chosen/pool_gp"));
    assert.equal(domains[2]!.getU32("xen,domain-p2m-mem-mb"), 3);
  },

  "evtchn.dts": (fdt) => {
    const ends = [...fdt.walk()].filter((e) => e.node.getString("compatible") === "xen,evtchn-v1");
    assert.deepEqual(
      ends.map((e) => e.path),
      ["/chosen/evtchn@10", "/chosen/guestA/evtchn@10", "/chosen/guestA/evtchn@20", "/chosen/guestB/evtchn@21"],
    );
    // Every end names its peer, and the peer names it back (Xen refuses to boot otherwise).
    const ports: [string, number, string][] = [];
    for (const { node, path } of ends) {
      const [port, peerPh] = readU32Array(node.require("xen,evtchn"));
      const peer = fdt.nodeByPhandle(peerPh!)!;
      const back = readU32Array(peer.require("xen,evtchn"))[1]!;
      assert.equal(fdt.nodeByPhandle(back), node, `${path} and its peer point at each other`);
      ports.push([path, port!, fdt.pathOf(peer)!]);
    }
    assert.deepEqual(ports, [
      ["/chosen/evtchn@10", 0x10, "/chosen/guestA/evtchn@10"],
      ["/chosen/guestA/evtchn@10", 0x10, "/chosen/evtchn@10"],
      ["/chosen/guestA/evtchn@20", 0x20, "/chosen/guestB/evtchn@21"],
      ["/chosen/guestB/evtchn@21", 0x21, "/chosen/guestA/evtchn@20"],
    ]);
    assert.equal(fdt.getNode("/chosen/guestB").getString("xen,enhanced"), "no-xenstore");
  },

  "shm.dts": (fdt) => {
    const regions = [...fdt.walk()]
      .filter((e) => e.node.getString("compatible") === "xen,domain-shared-memory-v1")
      .map(({ node, parent, path }) => {
        const v = node.require("xen,shared-mem");
        const ac = parent!.addressCells();
        return {
          path,
          id: node.getString("xen,shm-id"),
          role: node.getString("role") ?? "(DOMID_IO)",
          host: readCells(v, 0, ac),
          guest: readCells(v, ac, ac),
          size: readCells(v, 2 * ac, parent!.sizeCells()),
        };
      });
    assert.deepEqual(regions, [
      {
        path: "/chosen/dom0-shm@50000000",
        id: "ring-a",
        role: "owner",
        host: 0x50000000n,
        guest: 0x50000000n,
        size: 0x100000n,
      },
      {
        path: "/chosen/guestA/shm@50000000",
        id: "ring-a",
        role: "borrower",
        host: 0x50000000n,
        guest: 0x80000000n,
        size: 0x100000n,
      },
      {
        path: "/chosen/guestA/shm@51000000",
        id: "ab-link",
        role: "(DOMID_IO)",
        host: 0x51000000n,
        guest: 0x81000000n,
        size: 0x200000n,
      },
      {
        path: "/chosen/guestB/shm@51000000",
        id: "ab-link",
        role: "(DOMID_IO)",
        host: 0x51000000n,
        guest: 0x90000000n,
        size: 0x200000n,
      },
    ]);
  },

  "hyperlaunch.dts": (fdt) => {
    const hv = fdt.getNode("/chosen/hypervisor");
    assert.equal(hv.getString("compatible"), "hypervisor,xen");
    const boot = fdt.getNode("/chosen/hypervisor/domain@boot");
    assert.equal(boot.getU32("domid"), 0x7ff5);
    assert.equal(boot.unitAddress, "boot");
    assert.equal(boot.baseName, "domain");
    const ctl = fdt.getNode("/chosen/hypervisor/domain@ctl");
    assert.equal(ctl.getU32("functions"), 0x40000000);
    assert.equal(ctl.getU64("memory"), 0x40000n);
    assert.equal(ctl.require("domain-uuid").length, 16);
    // "/chosen/hypervisor/domain" finds the first domain@... in order.
    assert.equal(fdt.findNode("/chosen/hypervisor/domain"), boot);
    const mods = ctl.children.map((m) => [m.getString("compatible"), readU32Array(m.require("module-addr"))]);
    assert.deepEqual(mods, [
      ["module,kernel", [0x4a000000, 0x1000000]],
      ["module,ramdisk", [0x4b000000, 0x800000]],
    ]);
    assert.equal(fdt.getNode("/chosen/hypervisor/config/module").getString("compatible"), "module,xsm-policy");
  },

  "phandles.dts": (fdt) => {
    const dev = fdt.getNode("/dev@2000");
    const intc = fdt.getNode("/interrupt-controller@1000");
    // dtc allocates phandles 1, 2... to referenced nodes without one, keeps explicit ones.
    assert.equal(intc.phandle(), 1);
    assert.equal(fdt.getNode("/clock").phandle(), 0x100);
    assert.equal(fdt.getNode("/old-style").phandle(), 0x200);
    assert.equal(fdt.getNode("/old-style").has("phandle"), false);
    assert.equal(fdt.resolvePhandles(dev, "interrupt-parent")[0], intc);
    assert.equal(fdt.resolvePhandles(dev, "clocks")[0], fdt.getNode("/clock"));
    assert.equal(fdt.resolvePhandles(dev, "legacy-ref")[0], fdt.getNode("/old-style"));
    assert.equal(fdt.resolvePhandles(dev, "by-path")[0], fdt.getNode("/bus/leaf@0"));
    assert.equal(dev.getString("path-string"), "/bus/leaf@0");
    assert.deepEqual(
      fdt.resolvePhandles(fdt.getNode("/bus/leaf@0"), "peer").map((n) => n.name),
      ["interrupt-controller@1000", "clock"],
    );
    assert.deepEqual(
      dev.require("mixed"),
      bytes([0x61, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 0x12, 0x34, 0x62, 0]),
    );
    assert.deepEqual(dev.require("bytes8"), bytes([1, 2, 0xff]));
    assert.deepEqual(readU32Array(dev.require("wide")), [0x11223344, 0x55667788, 0, 0x99]);
    assert.equal(readCells(dev.require("wide"), 0, 2), 0x1122334455667788n);
    assert.equal(dev.getString("empty-string"), "");
    assert.deepEqual(dev.getStringList("strings"), ["x", "yy", "", "zzz"]);
    assert.deepEqual(fdt.reg("/dev@2000"), [
      { address: 0x2000n, size: 0x10n },
      { address: 0x3000n, size: 0x20n },
    ]);
    // Overrides after the root: added, replaced in place, deleted.
    assert.equal(fdt.getNode("/bus/leaf@0").getString("added-later"), "yes");
    assert.deepEqual(
      [...intc.properties.keys()],
      ["reg", "interrupt-controller", "#interrupt-cells", "late", "phandle"],
    );
    assert.equal(dev.has("to-delete"), false);
    assert.equal(fdt.findNode("/bus/gone@1"), undefined);
    assert.equal(fdt.phandles().size, 4);
  },

  "memreserve.dts": (fdt) => {
    assert.deepEqual(fdt.memoryReservations, [
      { address: 0x80000000n, size: 0x200000n },
      { address: 0x100000000n, size: 0x1000n },
      { address: 0xfffff000n, size: 0x1000n },
    ]);
    assert.deepEqual(fdt.reg("/memory@80000000"), [
      { address: 0x80000000n, size: 0x20000000n },
      { address: 0x100000000n, size: 0x10000000n },
    ]);
    const shm = fdt.getNode("/reserved-memory/xen-shmem@50000000");
    assert.equal(shm.getU64("xen,offset"), 0n);
    assert.equal(shm.getString("xen,id"), "ring-a");
    assert.ok(shm.has("no-map"));
  },
};

describe("dtc fixtures", { skip }, () => {
  it("has a check for every fixture", () => {
    assert.deepEqual(fixtureNames(".dts"), Object.keys(checks).sort());
  });

  for (const name of Object.keys(checks)) {
    describe(name, () => {
      it("reads dtc's blob and finds the expected values", () => {
        checks[name]!(readFdt(compile(name)));
      });

      it("re-writes dtc's blob byte for byte", () => {
        const blob = compile(name);
        assert.ok(Buffer.from(writeFdt(readFdt(blob))).equals(blob), "writer output differs from dtc's");
      });

      it("reads dtc's version-16 blob of the same tree", () => {
        const v17 = compile(name);
        const { fdt, header } = readFdtWithHeader(
          dtc(["-I", "dts", "-O", "dtb", "-V", "16", "-o", "-", fixturePath(name)]),
        );
        assert.equal(header.version, 16);
        assert.equal(header.sizeDtStruct, readFdtWithHeader(v17).header.sizeDtStruct);
        assert.ok(Buffer.from(writeFdt(fdt)).equals(v17));
      });

      it("gives dtc a blob it decompiles to the same source", () => {
        const blob = compile(name);
        const ours = writeFdt(readFdt(blob));
        assert.equal(dtbToDts(ours), dtbToDts(blob));
        assert.ok(dtc(["-I", "dtb", "-O", "dtb", "-o", "-", "-"], ours).equals(blob));
      });
    });
  }

  it("fixture sources are the ones documented", () => {
    // Guards against a fixture silently becoming empty (e.g. a bad merge).
    for (const name of Object.keys(checks)) assert.match(readFixture(name), /\/dts-v1\/;/);
  });
});

/** The tree of GUEST_DTS, built through the API. */
function buildGuestTree(): Fdt {
  const fdt = new Fdt(undefined, [{ address: 0x87e00000n, size: 0x200000n }]);
  const root = fdt.root.set("#address-cells", u32(2)).set("#size-cells", u32(2)).set("compatible", str("xenon,rv32"));
  root.subnode("chosen").set("bootargs", str("console=hvc0")).set("linux,initrd-start", u64(0x84000000n));
  const cpus = root.subnode("cpus").set("#address-cells", u32(1)).set("#size-cells", u32(0));
  for (const id of [2, 3]) {
    cpus
      .subnode(`cpu@${id}`)
      .set("device_type", str("cpu"))
      .set("reg", u32(id))
      .set("riscv,isa", str("rv32imac"))
      .set("phandle", u32(id - 1));
  }
  root
    .subnode("memory@80000000")
    .set("device_type", str("memory"))
    .set("reg", regValue([{ address: 0x80000000n, size: 0x8000000n }], 2, 2));
  root
    .subnode("hypervisor")
    .set("compatible", strList("xen,xen-4.17", "xen,xen"))
    .set("size-cells", u32(9)) // a tail of "#size-cells": shares its string
    .set("linux,phandle", u32(7))
    .set("cpu", u32(1, 2))
    .set("dma-coherent", empty())
    .set("blob", bytes([1, 2, 3]));
  return fdt;
}

const GUEST_DTS = `/dts-v1/;
/memreserve/ 0x87e00000 0x200000;
/ {
  #address-cells = <2>; #size-cells = <2>; compatible = "xenon,rv32";
  chosen { bootargs = "console=hvc0"; linux,initrd-start = /bits/ 64 <0x84000000>; };
  cpus { #address-cells = <1>; #size-cells = <0>;
    cpu@2 { device_type = "cpu"; reg = <2>; riscv,isa = "rv32imac"; phandle = <1>; };
    cpu@3 { device_type = "cpu"; reg = <3>; riscv,isa = "rv32imac"; phandle = <2>; };
  };
  memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x8000000>; };
  hypervisor { compatible = "xen,xen-4.17", "xen,xen"; size-cells = <9>; linux,phandle = <7>;
    cpu = <1 2>; dma-coherent; blob = [01 02 03]; };
};
`;

describe("trees built through the API", { skip }, () => {
  it("dtc accepts our blob and decompiles the expected source", () => {
    const ours = writeFdt(buildGuestTree());
    const text = dtbToDts(ours);
    for (const line of [
      "/memreserve/\t0x0000000087e00000 0x0000000000200000;",
      'bootargs = "console=hvc0";',
      "linux,initrd-start = <0x00 0x84000000>;",
      "cpu@3 {",
      'riscv,isa = "rv32imac";',
      "reg = <0x00 0x80000000 0x00 0x8000000>;",
      'compatible = "xen,xen-4.17\\0xen,xen";',
      "size-cells = <0x09>;",
      "dma-coherent;",
      "blob = [01 02 03];",
    ]) {
      assert.ok(text.includes(line), `decompiled source lacks ${JSON.stringify(line)}:\n${text}`);
    }
  });

  it("equals dtc's blob of the same source, boot CPU guessed the same way", () => {
    const ours = writeFdt(buildGuestTree());
    const theirs = dtsToDtb(GUEST_DTS);
    assert.equal(readFdtWithHeader(theirs).header.bootCpuidPhys, 2);
    assert.ok(Buffer.from(ours).equals(theirs));
  });

  it("random trees: our blob equals dtc's for the same source", () => {
    // Short names over a small alphabet make whole-string and tail matches in the strings
    // block frequent, which is where a writer most easily diverges from dtc.
    const rand = prng(0x5eed);
    const pick = (s: string, n: number) => Array.from({ length: n }, () => s[Math.floor(rand() * s.length)]).join("");
    for (let round = 0; round < 40; round++) {
      const fdt = new Fdt();
      const dts: string[] = ["/dts-v1/;"];
      const nres = Math.floor(rand() * 3);
      for (let i = 0; i < nres; i++) {
        const r = { address: BigInt(Math.floor(rand() * 2 ** 40)), size: BigInt(1 + Math.floor(rand() * 2 ** 20)) };
        fdt.memoryReservations.push(r);
        dts.push(`/memreserve/ 0x${r.address.toString(16)} 0x${r.size.toString(16)};`);
      }
      const fill = (node: FdtNode, depth: number, out: string[]) => {
        const nprops = Math.floor(rand() * 5);
        for (let i = 0; i < nprops; i++) {
          const name = pick("abc,#-", 1 + Math.floor(rand() * 6));
          if (node.has(name)) continue;
          const value = bytes(Array.from({ length: Math.floor(rand() * 9) }, () => Math.floor(rand() * 256)));
          node.set(name, value);
          const hex = [...value].map((b) => b.toString(16).padStart(2, "0")).join(" ");
          out.push(value.length === 0 ? `${name};` : `${name} = [${hex}];`);
        }
        const nkids = depth < 4 ? Math.floor(rand() * 4) : 0;
        for (let i = 0; i < nkids; i++) {
          const name = pick("abc,-", 1 + Math.floor(rand() * 4)) + (rand() < 0.3 ? `@${i}` : "");
          if (node.child(name)?.name === name) continue;
          out.push(`${name} {`);
          fill(node.addChild(name), depth + 1, out);
          out.push("};");
        }
      };
      const body: string[] = [];
      fill(fdt.root, 0, body);
      dts.push("/ {", ...body, "};");
      const source = dts.join("\n");
      const theirs = dtc(["-f", "-I", "dts", "-O", "dtb", "-o", "-", "-"], source);
      assert.ok(Buffer.from(writeFdt(fdt)).equals(theirs), `round ${round} differs for:\n${source}`);
      assert.ok(Buffer.from(writeFdt(readFdt(theirs))).equals(theirs));
    }
  });
});
