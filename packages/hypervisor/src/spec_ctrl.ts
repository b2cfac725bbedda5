/**
 * Speculation controls, modelled on Xen x86's: the hypervisor command line (`spec-ctrl=`,
 * `dom0-cpuid=`), each domain's MSR_SPEC_CTRL / VIRT_SPEC_CTRL state, and what a pCPU does on a
 * switch between domains. Our RV32 harts have no such MSRs or predictors; the state is modelled so
 * the policy is real and observable: a pCPU records the value it "runs with" and counts every
 * write of it, and its predictor flush drops the incoming vCPU's soft TLB and decoded-instruction
 * cache (the emulator's nearest analogue of branch-target and history state), counted too.
 *
 * Command-line syntax (Xen's): space-separated options, `name=value` or a bare boolean `name`
 * (`no-name` negates); list values are comma-separated; booleans take 0/1, no/yes, false/true,
 * off/on, disable/enable.
 */

/** MSR_SPEC_CTRL bits (Intel SDM / Xen's msr-index.h). */
export const SPEC_CTRL_IBRS = 1 << 0;
export const SPEC_CTRL_STIBP = 1 << 1;
export const SPEC_CTRL_SSBD = 1 << 2;
/** AMD's MSR_VIRT_SPEC_CTRL.SSBD, carried in the same word above the MSR_SPEC_CTRL bits. */
export const VIRT_SPEC_CTRL_SSBD = 1 << 8;

/** Per-domain controls a tree or xl.cfg may name, and their bits. */
export const DOMAIN_SPEC_CTRL_BITS: Readonly<Record<string, number>> = {
  ibrs: SPEC_CTRL_IBRS,
  stibp: SPEC_CTRL_STIBP,
  ssbd: SPEC_CTRL_SSBD,
  "virt-ssbd": VIRT_SPEC_CTRL_SSBD,
};

/** Features `dom0-cpuid=` may hide or show (the speculation-control subset of Xen's list). */
const CPUID_FEATURES = new Set(["ibrsb", "stibp", "ibpb", "ssbd", "virt-ssbd", "md-clear", "l1d-flush", "psfd"]);

export class XenCmdlineError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = "XenCmdlineError";
  }
}

/** What `spec-ctrl=` decided. */
export interface SpecCtrlOptions {
  /** Flush predictor state when a pCPU switches to another domain's vCPU (Xen's IBPB on switch). */
  readonly flushOnSwitch: boolean;
  /** "force": every domain runs with SSBD set; "off": no domain may set it; "guest": each its own. */
  readonly ssbd: "force" | "off" | "guest";
  /** Domains may use MSR_SPEC_CTRL at all (`spec-ctrl=no-msr-sc` / `spec-ctrl=no` clear it). */
  readonly msrSc: boolean;
}

export const DEFAULT_SPEC_CTRL: SpecCtrlOptions = { flushOnSwitch: true, ssbd: "guest", msrSc: true };

export interface XenCmdline {
  /** Every option as given (last one wins), for the ones we do not act on. */
  readonly options: ReadonlyMap<string, string>;
  readonly specCtrl: SpecCtrlOptions;
  /** `dom0-cpuid=`: feature -> shown (true) or hidden (false), for the hardware domain. */
  readonly dom0Cpuid: ReadonlyMap<string, boolean>;
}

const TRUE = new Set(["1", "yes", "true", "on", "enable"]);
const FALSE = new Set(["0", "no", "false", "off", "disable"]);

function parseBool(option: string, v: string): boolean {
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new XenCmdlineError(option, `'${v}' is not a boolean`);
}

/** One list item `[no-]name[=bool]` -> [name, value]. */
function boolItem(option: string, item: string): [string, boolean] {
  const eq = item.indexOf("=");
  if (eq >= 0) return [item.slice(0, eq), parseBool(option, item.slice(eq + 1))];
  if (item.startsWith("no-")) return [item.slice(3), false];
  return [item, true];
}

/**
 * `spec-ctrl=` (Xen 4.17 x86 names where they fit our model): a bare boolean turns every
 * mitigation on or off; `ibpb` and `bhb` (our name for the same flush, as the branch-history
 * mitigation) control the predictor flush on domain switch; `ssbd` forces SSBD on for every
 * domain, `no-ssbd` forbids it; `msr-sc` lets domains use MSR_SPEC_CTRL. Others Xen has are
 * accepted and have nothing to act on here (`rsb`, `md-clear`, `eager-fpu`, `l1d-flush`, ...).
 */
export function parseSpecCtrl(value: string, base: SpecCtrlOptions = DEFAULT_SPEC_CTRL): SpecCtrlOptions {
  let { flushOnSwitch, ssbd, msrSc } = base;
  const opt = "spec-ctrl";
  for (const item of value.split(",")) {
    if (item === "") throw new XenCmdlineError(opt, "empty list item");
    if (TRUE.has(item) || FALSE.has(item)) {
      const on = TRUE.has(item);
      flushOnSwitch = on;
      msrSc = on;
      if (!on) ssbd = "off";
      continue;
    }
    const [name, on] = boolItem(opt, item);
    switch (name) {
      case "ibpb":
      case "bhb":
        flushOnSwitch = on;
        break;
      case "ssbd":
        ssbd = on ? "force" : "off";
        break;
      case "msr-sc":
        msrSc = on;
        break;
      case "xen":
      case "pv":
      case "hvm":
      case "rsb":
      case "md-clear":
      case "ibrs":
      case "psfd":
      case "eager-fpu":
      case "l1d-flush":
      case "branch-harden":
      case "srb-lock":
      case "unpriv-mmio":
        break;
      default:
        throw new XenCmdlineError(opt, `unknown option '${name}'`);
    }
  }
  return { flushOnSwitch, ssbd, msrSc };
}

/** `dom0-cpuid=`: a list of `[no-]feature[=bool]` over the speculation-control features. */
export function parseDom0Cpuid(value: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const item of value.split(",")) {
    if (item === "") throw new XenCmdlineError("dom0-cpuid", "empty list item");
    const [name, on] = boolItem("dom0-cpuid", item);
    if (!CPUID_FEATURES.has(name)) throw new XenCmdlineError("dom0-cpuid", `unknown feature '${name}'`);
    out.set(name, on);
  }
  return out;
}

/** Parses a Xen command line (`/chosen/xen,xen-bootargs`). Throws XenCmdlineError. */
export function parseXenCmdline(line: string): XenCmdline {
  const options = new Map<string, string>();
  let specCtrl = DEFAULT_SPEC_CTRL;
  let dom0Cpuid = new Map<string, boolean>();
  for (const word of line.split(/\s+/)) {
    if (word === "") continue;
    const eq = word.indexOf("=");
    const name = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? "" : word.slice(eq + 1);
    options.set(name, value);
    if (name === "spec-ctrl") specCtrl = parseSpecCtrl(value === "" ? "1" : value, specCtrl);
    else if (name === "no-spec-ctrl") specCtrl = parseSpecCtrl("0", specCtrl);
    else if (name === "dom0-cpuid") dom0Cpuid = parseDom0Cpuid(value);
  }
  return { options, specCtrl, dom0Cpuid };
}

/** The CPUID feature a domain needs to use each control (what `dom0-cpuid=` can hide). */
const CONTROL_FEATURE: Readonly<Record<string, string>> = {
  ibrs: "ibrsb",
  stibp: "stibp",
  ssbd: "ssbd",
  "virt-ssbd": "virt-ssbd",
};

/**
 * A domain's controls from names (`ibrs`, `stibp`, `ssbd`, `virt-ssbd`) under the command line's
 * policy; `cpuid` (the hardware domain's `dom0-cpuid=`) hides features, and with them the controls
 * they carry. Throws XenCmdlineError naming what the policy forbids.
 */
export function domainSpecCtrl(
  names: readonly string[],
  policy: SpecCtrlOptions,
  cpuid: ReadonlyMap<string, boolean> = new Map(),
): number {
  let bits = 0;
  for (const n of names) {
    const b = DOMAIN_SPEC_CTRL_BITS[n];
    if (b === undefined) throw new XenCmdlineError(n, "unknown control (ibrs, stibp, ssbd or virt-ssbd)");
    const feature = CONTROL_FEATURE[n]!;
    if (cpuid.get(feature) === false)
      throw new XenCmdlineError(n, `hidden from the hardware domain by dom0-cpuid=no-${feature}`);
    if (!policy.msrSc && b !== VIRT_SPEC_CTRL_SSBD) throw new XenCmdlineError(n, "MSR_SPEC_CTRL is off (spec-ctrl)");
    if (policy.ssbd === "off" && (b === SPEC_CTRL_SSBD || b === VIRT_SPEC_CTRL_SSBD))
      throw new XenCmdlineError(n, "SSBD is disabled on the hypervisor command line");
    bits |= b;
  }
  return bits;
}

/** The value a pCPU runs a domain with: the domain's own bits, plus SSBD when forced. */
export function effectiveSpecCtrl(domainBits: number, policy: SpecCtrlOptions): number {
  return policy.ssbd === "force" ? domainBits | SPEC_CTRL_SSBD : domainBits;
}

/**
 * What Xen prints at boot about its speculation controls ("Speculative mitigation facilities"),
 * for this model: the policy every pCPU applies, what domains may use, and dom0-cpuid.
 */
export function specCtrlReport(c: XenCmdline): string[] {
  const p = c.specCtrl;
  const ssbd = p.ssbd === "force" ? "SSBD+ (forced)" : p.ssbd === "off" ? "SSBD- (off)" : "SSBD per domain";
  const vm = [p.msrSc ? "MSR_SPEC_CTRL" : "", p.ssbd !== "off" ? "VIRT_SPEC_CTRL" : ""].filter((s) => s !== "");
  const lines = [
    "Speculative mitigation facilities:",
    `  Xen settings: SPEC_CTRL: ${p.msrSc ? "in use" : "no"}, ${ssbd}, Other:${p.flushOnSwitch ? " IBPB-ctxt BHB-ctxt" : " none"}`,
    `  Support for domains: ${vm.length > 0 ? vm.join(" ") : "None"}`,
  ];
  if (c.dom0Cpuid.size > 0)
    lines.push(
      `  dom0-cpuid: ${[...c.dom0Cpuid].map(([f, on]) => (on ? f : `no-${f}`)).join(",")} (the hardware domain)`,
    );
  return lines;
}
