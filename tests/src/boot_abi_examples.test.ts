import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { P2mType, readFdt } from "@xenon/hypervisor";
import { buildSystem, planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * Every example tree of xen-abi.md §6 (Xen 4.17's dom0less bindings) boots under `xenon boot`,
 * adapted only by host scaffolding, the parts the document elides, and module images named by
 * `xenon,path` (each fixture's header says what). §6.1 has no tree of its own: its /chosen
 * properties are exercised by the others (xen,xen-bootargs, cells, module children, dom0 ends).
 */
const hello = /Hello from Xenon guest, vCPU 0$/;

describe("xen-abi.md §6 example trees", () => {
  it("§6.2 xen,domain: vpl011, xen,enhanced with XenStore, a ramdisk, static memory direct-mapped at 0x70000000", async () => {
    const fx = bootFixture("abi_6_2.dts");
    const initrd = new Uint8Array(12345).map((_, i) => (i * 7) & 0xff);
    writeFileSync(join(fx.dir, "initrd.img"), initrd);
    const dtb = fx.compile("abi_6_2");
    const r = await runXenon(["boot", dtb], 120_000);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, `${out}\n${r.stderr}`);
    assert.match(out, new RegExp(`^\\(guest1\\) ${hello.source}`, "m"));
    assert.match(out, new RegExp(`^\\(guest2\\) ${hello.source}`, "m"));
    // guest2's tree sits at the top of its static bank, at its host address.
    assert.match(out, /^\(guest2\) device tree at 0x77ff[0-9a-f]{4}: magic 0xd00dfeed \(ok\)$/m);

    const plan = planFromFile(dtb);
    const [g1, g2] = plan.domains;
    assert.equal(g1?.xenstore, true, "xen,enhanced = enabled gives XenStore");
    assert.equal(g1?.ramdisk, join(fx.dir, "initrd.img"));
    assert.equal(g1?.vcpus, 2);
    assert.deepEqual(g2?.staticMem, [{ hpa: 0x70000000, bytes: 0x08000000 }]);
    assert.equal(g2?.directMap, true);
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const d1 = built.hv.domains.get(built.domids[0]!)!;
      // The guest's tree is in the last pages of its RAM: find it, read linux,initrd-*, compare.
      const top = 0x80000000 + 256 * 2 ** 20;
      let fdtAt = -1;
      for (let a = top - 4096; a > top - 64 * 4096; a -= 4096) {
        const m = d1.guest.copyFromGuest(a, 4);
        if (m instanceof Uint8Array && m[0] === 0xd0 && m[1] === 0x0d && m[2] === 0xfe && m[3] === 0xed) {
          fdtAt = a;
          break;
        }
      }
      assert.ok(fdtAt > 0, "the guest's device tree");
      const head = d1.guest.copyFromGuest(fdtAt, 8) as Uint8Array;
      const size = new DataView(head.buffer, head.byteOffset).getUint32(4);
      const chosen = readFdt(d1.guest.copyFromGuest(fdtAt, size) as Uint8Array).root.child("chosen")!;
      const u64 = (p: string) => {
        const v = chosen.getU32Array(p)!;
        return v[0]! * 2 ** 32 + v[1]!;
      };
      const start = u64("linux,initrd-start");
      assert.equal(u64("linux,initrd-end") - start, initrd.length);
      assert.equal(start % 4096, 0);
      assert.ok(start + initrd.length <= fdtAt, "below the tree");
      assert.deepEqual(d1.guest.copyFromGuest(start, initrd.length), initrd, "the ramdisk is loaded there");
      // guest2: gfn == mfn over its static bank.
      const d2 = built.hv.domains.get(built.domids[1]!)!;
      assert.equal(d2.p2m.get(0x70000)?.mfn, 0x70000);
      assert.equal(d2.p2m.get(0x77fff)?.mfn, 0x77fff);
    } finally {
      await built.machine.close();
    }
  });

  it("§6.3 cpupools: pool_gp (boot CPU) becomes Pool-0, rtguest runs in pool_rt under null", async () => {
    const fx = bootFixture("abi_6_3.dts");
    const dtb = fx.compile("abi_6_3");
    const plan = planFromFile(dtb);
    assert.deepEqual(
      plan.pools.map((p) => [p.name, p.scheduler, p.pcpus.map((c) => c.id)]),
      [
        ["pool_gp", "credit2", [0, 1]],
        ["pool_rt", "null", [2, 3]],
      ],
    );
    assert.equal(plan.domains[0]?.pool, 1);
    assert.equal(plan.domains[0]?.vcpus, 2);
    const r = await runXenon(["boot", dtb], 120_000);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout.toString(), new RegExp(`^\\(rtguest\\) ${hello.source}`, "m"));
  });

  it("§6.4 static event channels: dom0's end under /chosen, guestA and guestB bounce events on 0x20/0x21", async () => {
    const fx = bootFixture("abi_6_4.dts");
    const dtb = fx.compile("abi_6_4");
    const plan = planFromFile(dtb);
    assert.deepEqual(plan.dom0, { sharedMem: [] });
    assert.deepEqual(plan.evtchns, [
      { a: 0, aPort: 0x10, b: 1, bPort: 0x10 },
      { a: 1, aPort: 0x20, b: 2, bPort: 0x21 },
    ]);
    assert.equal(plan.domains[0]?.xenstore, undefined, "no-xenstore");
    const r = await runXenon(["boot", dtb], 120_000);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, `${out}\n${r.stderr}`);
    assert.match(out, /^\(guestA\) pingpong: ping done 20 rounds$/m);
    assert.match(out, /^\(guestB\) pingpong: pong done 20 rounds$/m);
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const dom0 = built.hv.domains.get(0)!;
      assert.equal(dom0.name, "Domain-0");
      const a = built.hv.domains.get(built.domids[0]!)!;
      assert.equal(dom0.evtchn.u1(0x10), a.domid, "dom0's end is bound to guestA's");
      assert.equal(a.evtchn.u1(0x10), 0);
    } finally {
      await built.machine.close();
    }
  });

  it("§6.5 static shared memory: ring-a owned by dom0, ab-link owned by DOMID_IO", async () => {
    const fx = bootFixture("abi_6_5.dts");
    const dtb = fx.compile("abi_6_5");
    const r = await runXenon(["boot", dtb], 120_000);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, `${out}\n${r.stderr}`);
    assert.match(out, new RegExp(`^\\(guestA\\) ${hello.source}`, "m"));
    assert.match(out, new RegExp(`^\\(guestB\\) ${hello.source}`, "m"));
    const plan = planFromFile(dtb);
    assert.equal(plan.domains[0]?.ramBase, 0x70000000, "RAM where the kernel is linked");
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const [a, b] = built.domids.map((id) => built.hv.domains.get(id)!);
      const dom0 = built.hv.domains.get(0)!;
      const mapped = (d: typeof dom0, gfn: number, mfn: number, pages: number) => {
        for (let i = 0; i < pages; i++) {
          const e = d.p2m.get(gfn + i);
          assert.equal(e?.mfn, mfn + i);
          assert.equal(e?.type, P2mType.static_shared_rw);
        }
      };
      mapped(dom0, 0x50000, 0x50000, 256);
      mapped(a!, 0x80000, 0x50000, 256);
      mapped(a!, 0x81000, 0x51000, 512);
      mapped(b!, 0x90000, 0x51000, 512);
    } finally {
      await built.machine.close();
    }
  });

  it("§6.6 static heap: the domain's RAM comes from 0xA0000000..", async () => {
    const fx = bootFixture("abi_6_6.dts");
    const dtb = fx.compile("abi_6_6");
    const plan = planFromFile(dtb);
    assert.deepEqual(plan.staticHeap, [{ hpa: 0xa0000000, bytes: 0x10000000 }]);
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      const d = built.hv.domains.get(built.domids[0]!)!;
      const mfn = d.p2m.get(0x80000)!.mfn;
      assert.ok(mfn >= 0xa0000 && mfn < 0xb0000, `RAM from the heap (mfn ${mfn.toString(16)})`);
    } finally {
      await built.machine.close();
    }
    const r = await runXenon(["boot", dtb], 120_000);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout.toString(), new RegExp(`^\\(guest\\) ${hello.source}`, "m"));
  });

  const fx = bootFixture("abi_6_2.dts");
  writeFileSync(join(fx.dir, "initrd.img"), new Uint8Array(64));
  const refusals: Array<[string, string, string, RegExp]> = [
    [
      "an unknown xen,enhanced value",
      'xen,enhanced = "enabled";',
      'xen,enhanced = "maybe";',
      /\/chosen\/guest1: xen,enhanced: 'maybe' is none of enabled, no-xenstore, disabled/,
    ],
    [
      "a ramdisk module without an image",
      'xenon,path = "initrd.img";',
      "",
      /\/chosen\/guest1\/module@61000000: xenon,path: missing: names the ramdisk image file/,
    ],
    [
      "a missing ramdisk image",
      'xenon,path = "initrd.img";',
      'xenon,path = "nope.img";',
      /\/chosen\/guest1\/module@61000000: xenon,path: ramdisk 'nope\.img' not found beside the tree/,
    ],
    ["vpl011 with a value", "vpl011;", 'vpl011 = "yes";', /\/chosen\/guest1: vpl011: is a flag/],
    [
      "RAM over the hypervisor window (a kernel linked low, too much memory)",
      'xenon,path = "hello.elf";',
      'xenon,path = "hellolow.elf";',
      /\/chosen\/guest1: memory: the kernel is linked at 0x70000000: RAM \[0x70000000, \+0x10000000\) would cover the hypervisor window/,
    ],
  ];
  for (const [name, from, to, message] of refusals) {
    it(`refuses ${name}, naming the node and property`, async () => {
      const r = await runXenon(["boot", fx.compile(name.replace(/\W+/g, "_"), fx.variant(from, to))]);
      assert.equal(r.status, 1, `status ${r.status}: ${r.stdout}`);
      assert.match(r.stderr.toString(), message);
      assert.equal(r.stdout.toString(), "", "nothing ran");
    });
  }
});
