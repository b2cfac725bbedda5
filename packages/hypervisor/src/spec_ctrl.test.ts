import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_SPEC_CTRL,
  domainSpecCtrl,
  effectiveSpecCtrl,
  parseDom0Cpuid,
  parseSpecCtrl,
  parseXenCmdline,
  SPEC_CTRL_IBRS,
  SPEC_CTRL_SSBD,
  SPEC_CTRL_STIBP,
  VIRT_SPEC_CTRL_SSBD,
} from "./spec_ctrl.js";

describe("hypervisor command line: spec-ctrl, dom0-cpuid", () => {
  it("MSR_SPEC_CTRL bits are Intel's: IBRS 0, STIBP 1, SSBD 2", () => {
    assert.deepEqual([SPEC_CTRL_IBRS, SPEC_CTRL_STIBP, SPEC_CTRL_SSBD], [1, 2, 4]);
  });

  it("defaults: flush on switch, each domain its own SSBD, MSR_SPEC_CTRL usable", () => {
    assert.deepEqual(parseXenCmdline("console=dtuart sched=credit2").specCtrl, DEFAULT_SPEC_CTRL);
    assert.equal(parseXenCmdline("console=dtuart sched=credit2").options.get("sched"), "credit2");
  });

  it("a bare boolean sets everything; named items then refine it, in order", () => {
    assert.deepEqual(parseSpecCtrl("no"), { flushOnSwitch: false, ssbd: "off", msrSc: false });
    assert.deepEqual(parseSpecCtrl("0,bhb"), { flushOnSwitch: true, ssbd: "off", msrSc: false });
    assert.deepEqual(parseSpecCtrl("ssbd,ibpb=0"), { flushOnSwitch: false, ssbd: "force", msrSc: true });
    assert.deepEqual(parseSpecCtrl("no-ssbd,bhb=on"), { flushOnSwitch: true, ssbd: "off", msrSc: true });
    assert.deepEqual(parseSpecCtrl("rsb=0,md-clear,eager-fpu=1"), DEFAULT_SPEC_CTRL, "accepted, nothing to do");
    assert.deepEqual(parseXenCmdline("spec-ctrl=no-bhb spec-ctrl=ssbd").specCtrl, {
      flushOnSwitch: false,
      ssbd: "force",
      msrSc: true,
    });
    assert.equal(parseXenCmdline("no-spec-ctrl").specCtrl.flushOnSwitch, false);
  });

  it("refuses what it cannot read, naming the option", () => {
    assert.throws(() => parseSpecCtrl("ssbd=maybe"), /^XenCmdlineError: spec-ctrl: 'maybe' is not a boolean$/);
    assert.throws(() => parseSpecCtrl("turbo"), /spec-ctrl: unknown option 'turbo'/);
    assert.throws(() => parseSpecCtrl("ssbd,,bhb"), /spec-ctrl: empty list item/);
    assert.throws(() => parseXenCmdline("dom0-cpuid=no-avx9"), /dom0-cpuid: unknown feature 'avx9'/);
  });

  it("dom0-cpuid: [no-]feature[=bool]", () => {
    assert.deepEqual(
      [...parseDom0Cpuid("no-ssbd,virt-ssbd,stibp=0,md-clear=yes")],
      [
        ["ssbd", false],
        ["virt-ssbd", true],
        ["stibp", false],
        ["md-clear", true],
      ],
    );
  });

  it("a domain's controls under the policy", () => {
    assert.equal(domainSpecCtrl(["ssbd", "stibp"], DEFAULT_SPEC_CTRL), SPEC_CTRL_SSBD | SPEC_CTRL_STIBP);
    assert.equal(domainSpecCtrl(["virt-ssbd"], DEFAULT_SPEC_CTRL), VIRT_SPEC_CTRL_SSBD);
    assert.throws(() => domainSpecCtrl(["ssbd"], parseSpecCtrl("no-ssbd")), /ssbd: SSBD is disabled/);
    assert.throws(() => domainSpecCtrl(["ibrs"], parseSpecCtrl("msr-sc=0")), /ibrs: MSR_SPEC_CTRL is off/);
    assert.throws(() => domainSpecCtrl(["turbo"], DEFAULT_SPEC_CTRL), /turbo: unknown control/);
    assert.equal(effectiveSpecCtrl(SPEC_CTRL_IBRS, parseSpecCtrl("ssbd")), SPEC_CTRL_IBRS | SPEC_CTRL_SSBD);
    assert.equal(effectiveSpecCtrl(SPEC_CTRL_IBRS, DEFAULT_SPEC_CTRL), SPEC_CTRL_IBRS);
  });
});
