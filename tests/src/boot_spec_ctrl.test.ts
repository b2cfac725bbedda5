import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runProcess, runXenon, XENON_BIN } from "./helpers/run.js";

/**
 * The hypervisor command line (`xen,xen-bootargs`, `--xen-bootargs`) and per-domain speculation
 * controls: on one pCPU a ping-pong pair switches domains on every event; `--stats` shows the
 * switches, the SPEC_CTRL writes they needed and the predictor flushes spec-ctrl asked for.
 */
const { source, compile } = bootFixture("spec_ctrl.dts");

async function boot(extra: string[], dts = source): Promise<{ switches: number; writes: number; flushes: number }> {
  const r = await runXenon(["boot", "--stats", ...extra, compile("spec", dts)]);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.match(r.stdout.toString(), /^\(ping\) pingpong: ping done 20 rounds$/m);
  const m = /spec-ctrl: (\d+) domain switches, (\d+) SPEC_CTRL writes, (\d+) predictor flushes/.exec(
    r.stderr.toString(),
  );
  assert.ok(m, r.stderr.toString());
  return { switches: Number(m[1]), writes: Number(m[2]), flushes: Number(m[3]) };
}

describe("xenon boot: hypervisor command line and speculation controls", () => {
  it("defaults: a flush on every switch between domains, SPEC_CTRL written when it changes", async () => {
    const c = await boot([]);
    assert.ok(c.switches >= 40, `20 rounds each way: ${c.switches} switches`);
    assert.equal(c.flushes, c.switches - 1, "every switch but the pCPU's first");
    // ping runs with SSBD, pong with 0: every switch between them changes the value.
    assert.ok(c.writes >= c.switches - 1, `${c.writes} writes for ${c.switches} switches`);
  });

  it("spec-ctrl=no-ibpb,no-bhb on our command line: no flushes; ssbd forced: one value, one write", async () => {
    const c = await boot(["--xen-bootargs", "spec-ctrl=no-ibpb,no-bhb,ssbd"]);
    assert.ok(c.switches >= 40);
    assert.equal(c.flushes, 0);
    assert.equal(c.writes, 1, "both domains run with SSBD: written once, at the first switch");
  });

  const refusals: Array<[string, string[], string, RegExp]> = [
    [
      "an unknown spec-ctrl option",
      ["--xen-bootargs", "spec-ctrl=turbo"],
      source,
      /\/chosen: xen,xen-bootargs: spec-ctrl: unknown option 'turbo'/,
    ],
    [
      "SSBD asked for by a domain when the command line forbids it",
      ["--xen-bootargs", "spec-ctrl=no-ssbd"],
      source,
      /\/chosen\/ping: xenon,spec-ctrl: ssbd: SSBD is disabled on the hypervisor command line/,
    ],
    [
      "an unknown per-domain control",
      [],
      source.replace('spec-ctrl = "ssbd";', 'spec-ctrl = "ssbd", "turbo";'),
      /\/chosen\/ping: xenon,spec-ctrl: turbo: unknown control/,
    ],
    [
      "a control dom0-cpuid hides from the hardware domain",
      ["--xen-bootargs", "dom0-cpuid=no-ssbd"],
      source.replace('xenon,spec-ctrl = "ssbd";', 'xenon,spec-ctrl = "ssbd";\n            permissions = <0x2>;'),
      /\/chosen\/ping: xenon,spec-ctrl: ssbd: hidden from the hardware domain by dom0-cpuid=no-ssbd/,
    ],
    [
      "a bad dom0-cpuid",
      [],
      source.replace("dom0-cpuid=no-md-clear", "dom0-cpuid=md-clear=perhaps"),
      /\/chosen: xen,xen-bootargs: dom0-cpuid: 'perhaps' is not a boolean/,
    ],
  ];
  for (const [name, extra, dts, message] of refusals) {
    it(`refuses ${name}, naming the node and property`, async () => {
      const r = await runXenon(["boot", ...extra, compile(name.replace(/\W+/g, "_"), dts)]);
      assert.equal(r.status, 1, `status ${r.status}: ${r.stdout}`);
      assert.match(r.stderr.toString(), message);
      assert.equal(r.stdout.toString(), "", "nothing ran");
    });
  }

  it("xl shows them: xen_commandline in xl info, the boot summary in xl dmesg, each domain's state in xl list -l", async () => {
    // Two domains that spin until the host stops: "hw" (the hardware domain, SSBD and VIRT_SSBD)
    // and "plain" (nothing of its own; spec-ctrl=ssbd forces SSBD on it).
    const dts = source
      .replaceAll('xenon,path = "pingpong.elf";', 'xenon,path = "spin.elf";')
      .replace(/bootargs = "role=ping[^"]*";/, 'bootargs = "report=0 total=0";')
      .replace(/bootargs = "role=pong[^"]*";/, 'bootargs = "report=0 total=0";')
      .replace('xenon,spec-ctrl = "ssbd";', 'xenon,spec-ctrl = "ssbd", "virt-ssbd";\n            permissions = <0x2>;')
      .replace(/ping_ch: evtchn \{[^}]*\};/, "")
      .replace(/pong_ch: evtchn \{[^}]*\};/, "")
      .replace("ping {", "hw {")
      .replace("pong {", "plain {");
    const host = spawn(
      process.execPath,
      [XENON_BIN, "boot", "--serve", "--xen-bootargs", "spec-ctrl=ssbd", compile("spec_serve", dts)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        host.stdout.on("data", (b: Buffer) => {
          out += b.toString();
          const m = /^XENON_HOST=(.*)$/m.exec(out);
          if (m !== null) resolve(m[1]!);
        });
        host.on("close", (status) => reject(new Error(`host exited ${status}: ${out}`)));
      });
      const XL = fileURLToPath(new URL("../../packages/toolstack/bin/xl.js", import.meta.url));
      const xl = async (...args: string[]) => {
        const r = await runProcess(process.execPath, [XL, "-H", url, ...args]);
        assert.equal(r.status, 0, `xl ${args.join(" ")}: ${r.stderr}`);
        return r.stdout.toString();
      };
      assert.match(
        await xl("info"),
        /^xen_commandline +: console=dtuart spec-ctrl=msr-sc,md-clear dom0-cpuid=no-md-clear spec-ctrl=ssbd$/m,
      );
      const dmesg = await xl("dmesg");
      assert.match(dmesg, /^\(XEN\) Speculative mitigation facilities:$/m);
      assert.match(
        dmesg,
        /^\(XEN\) {3}Xen settings: SPEC_CTRL: in use, SSBD\+ \(forced\), Other: IBPB-ctxt BHB-ctxt$/m,
      );
      assert.match(dmesg, /^\(XEN\) {3}dom0-cpuid: no-md-clear \(the hardware domain\)$/m);
      const state = async (name: string) =>
        (JSON.parse(await xl("list", "-l", name)) as Array<{ specCtrl: unknown }>)[0]?.specCtrl;
      assert.deepEqual(await state("hw"), { msrSpecCtrl: 4, virtSsbd: true });
      assert.deepEqual(await state("plain"), { msrSpecCtrl: 4, virtSsbd: false }, "SSBD forced");
    } finally {
      host.kill("SIGTERM");
      await new Promise((r) => host.once("close", r));
    }
  });
});
