import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DomInf } from "@xenon/hypervisor";
import { buildSystem, planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runXenon } from "./helpers/run.js";

/**
 * Hyperlaunch roles on domain nodes: `permissions` (CONTROL, HARDWARE), `functions` (CONSOLE,
 * XENSTORE, LEGACY_DOM0) and `domid` become the domains' flags and ids; a tree that gives a
 * role twice, an unknown bit, a launch phase we do not run or a bad domid is refused at once.
 */
const { source, compile, variant } = bootFixture("roles.dts");

describe("xenon boot: Hyperlaunch domain roles", () => {
  it("boots every domain with its role", async () => {
    const r = await runXenon(["boot", compile("roles", source)]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (const name of ["ctl", "hw", "store", "plain"])
      assert.match(r.stdout.toString(), new RegExp(`^\\(${name}\\) Hello from Xenon guest, vCPU 0$`, "m"));
  });

  it("roles become flags, domids are the ones asked for and then the first free ones", async () => {
    const plan = planFromFile(compile("roles_plan", source));
    const built = buildSystem({ ...plan, console: () => {} });
    try {
      assert.deepEqual(built.domids, [1, 7, 2, 3]);
      const [ctl, hw, store, plain] = built.domids.map((id) => built.hv.domains.get(id)!);
      assert.deepEqual(
        [ctl!, hw!, store!, plain!].map((d) => [d.flags.privileged, d.flags.hardware, d.flags.xenstore]),
        [
          [true, false, false],
          [false, true, false],
          [false, false, true],
          [false, false, false],
        ],
      );
      assert.ok((store!.info().flags & DomInf.xs_domain) !== 0, "getdomaininfo reports the XenStore domain");
    } finally {
      await built.machine.close();
    }
  });

  it("LEGACY_DOM0 holds every role", () => {
    const plan = planFromFile(
      compile(
        "legacy",
        variant("            permissions = <0x1>;               /* CONTROL */", "            functions = <0x80000000>;")
          .replace("            permissions = <0x2>;               /* HARDWARE */\n", "")
          .replace("            functions = <0x4>;                 /* CONSOLE */\n", "")
          .replace("            functions = <0x40000000>;          /* XENSTORE */\n", ""),
      ),
    );
    assert.deepEqual(plan.domains[0]!.roles, ["control", "hardware", "xenstore", "console"]);
  });

  const refusals: Array<[string, string, string, RegExp]> = [
    [
      "two hardware domains",
      "permissions = <0x1>;",
      "permissions = <0x3>;",
      /\/chosen\/hw: permissions: hardware role already held by \/chosen\/ctl/,
    ],
    [
      "two XenStore domains",
      "functions = <0x4>;",
      "functions = <0x40000004>;",
      /\/chosen\/store: functions: xenstore role already held by \/chosen\/hw/,
    ],
    [
      "an unknown permission",
      "permissions = <0x1>;",
      "permissions = <0x5>;",
      /\/chosen\/ctl: permissions: unknown bits 0x5/,
    ],
    [
      "an unknown function",
      "functions = <0x4>;",
      "functions = <0x14>;",
      /\/chosen\/hw: functions: unknown bits in 0x14/,
    ],
    [
      "a boot domain",
      "functions = <0x4>;",
      "functions = <0x5>;",
      /\/chosen\/hw: functions: BOOT: a boot domain \(the domain preparation phase\) is not supported/,
    ],
    ["a reserved domid", "domid = <7>;", "domid = <0x7ff5>;", /\/chosen\/hw: domid: 0x7ff5 is a reserved domain id/],
    [
      "domid 0 for a domain without the hardware role",
      "permissions = <0x1>;",
      "permissions = <0x1>; domid = <0>;",
      /\/chosen\/ctl: domid: 0 is the hardware domain's id/,
    ],
    [
      "a domid asked for twice",
      "permissions = <0x1>;",
      "permissions = <0x1>; domid = <7>;",
      /\/chosen\/hw: domid: 7 is already \/chosen\/ctl's/,
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
