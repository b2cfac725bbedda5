import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * `xenon boot SYSTEM.dtb`: dom0less from a tree compiled by the real dtc. The fixture has two
 * cpupools (credit2 on big pCPUs, RTDS on LITTLE ones), hello.elf, and a ping-pong pair whose
 * static event channel crosses the pools. Every refusal names the node and the property.
 */
const { source, compile, variant, dir } = bootFixture("system.dts");

describe("xenon boot (dom0less)", () => {
  it("boots every domain of the tree in its cpupool and exits 0 when all power off", async () => {
    const r = await runXenon(["boot", compile("system", source)]);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, r.stderr.toString());
    assert.match(out, /^\(hello\) Hello from Xenon guest, vCPU 0$/m);
    assert.match(out, /^\(ping\) pingpong: ping, domain 2, peer 3, port 10, 50 rounds$/m);
    assert.match(out, /^\(ping\) pingpong: ping done 50 rounds$/m);
    assert.match(out, /^\(pong\) pingpong: pong done 50 rounds$/m);
  });

  const refusals: Array<[string, string, string, RegExp]> = [
    [
      "missing image",
      'xenon,path = "hello.elf"',
      'xenon,path = "nope.elf"',
      /\/chosen\/hello\/kernel: xenon,path: image 'nope\.elf' not found/,
    ],
    [
      "cpupool without cpus",
      "cpupool-cpus = <&cpu2 &cpu3>;",
      "cpupool-cpus;",
      /\/chosen\/pool_little: cpupool-cpus: must be a non-empty list/,
    ],
    [
      "unknown scheduler",
      'cpupool-sched = "rtds"',
      'cpupool-sched = "bvt"',
      /\/chosen\/pool_little: cpupool-sched: unknown scheduler 'bvt'/,
    ],
    [
      "a cpu in two pools",
      "cpupool-cpus = <&cpu0 &cpu1>;",
      "cpupool-cpus = <&cpu0 &cpu2>;",
      /\/chosen\/pool_big: cpupool-cpus: \/cpus\/cpu@2 is already in another cpupool/,
    ],
    [
      "more memory than the host",
      "memory = <0x0 0x1000>;",
      "memory = <0x0 0x100000>;",
      /\/chosen\/hello: memory: domains ask for 1028 MiB, the host has 256 MiB/,
    ],
    [
      "memory not in whole MiB",
      "memory = <0x0 0x1000>;",
      "memory = <0x0 0x1001>;",
      /\/chosen\/hello: memory: 4097 KiB/,
    ],
    ["no cpus property", "            cpus = <1>;\n            kernel", "            kernel", /cpus: missing/],
    [
      "one-sided event channel",
      "xen,evtchn = <10 &ping_ch>;",
      "xen,evtchn = <10 &little>;",
      /\/chosen\/ping\/evtchn: xen,evtchn: \/chosen\/pool_little is not an event channel|does not point back/,
    ],
    [
      "pool reference to a non-pool",
      "domain-cpupool = <&big>;",
      "domain-cpupool = <&cpu0>;",
      /\/chosen\/ping: domain-cpupool: phandle \d+ is not a xen,cpupool node/,
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

  it("refuses a file that is not a device tree", async () => {
    const bad = join(dir, "bad.dtb");
    writeFileSync(bad, "not a tree");
    const r = await runXenon(["boot", bad]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /^xenon: boot: .*bad\.dtb: /);
  });
});
