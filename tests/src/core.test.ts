import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import type { SchedName, TraceEvent } from "@xenon/hypervisor";
import { buildSystem, type DomainSpec, runSystem, type StaticEvtchn } from "@xenon/toolstack";

/**
 * Issue 3's integration tests: real guest images as domains under the core, their vCPUs on pCPU
 * worker threads. Scheduling shares are measured in deterministic mode (time = retired
 * instructions), so they do not depend on how loaded the test machine is.
 */
const img = (name: string) => guestImagePath(name);
const dom = (name: string, path: string, bootargs = "", extra: Partial<DomainSpec> = {}): DomainSpec => ({
  path,
  name,
  memoryMiB: 2,
  bootargs,
  ...extra,
});

async function run(
  domains: DomainSpec[],
  evtchns: StaticEvtchn[] = [],
  opts: { pcpus?: number; deterministic?: boolean } = {},
) {
  const lines: string[] = [];
  const trace: TraceEvent[] = [];
  const r = await runSystem({
    domains,
    evtchns,
    pcpus: opts.pcpus ?? 2,
    timeMode: opts.deterministic ? "instructions" : "host",
    console: (name, line) => lines.push(`${name}: ${line}`),
    trace: (e) => trace.push(e),
    timeoutMs: 60_000,
  });
  assert.equal(r.timedOut, false, `timed out:\n${lines.join("\n")}`);
  return { ...r, lines, out: lines.join("\n"), trace };
}

/** Runs always-busy spin domains for `virtualMs` of virtual time on one pCPU; returns each domain's share. */
async function shares(sched: SchedName, specs: DomainSpec[], virtualMs: number): Promise<number[]> {
  const { machine, domids } = buildSystem({
    domains: specs,
    pcpus: 1,
    scheduler: sched,
    timeMode: "instructions",
    console: () => {},
  });
  machine.start();
  const start = machine.now();
  try {
    while (machine.now() - start < virtualMs * 1e6) await new Promise((r) => setTimeout(r, 20));
    const stats = machine.vcpuStats();
    const elapsed = machine.now() - start;
    return domids.map((d) => stats.filter((s) => s.domid === d).reduce((n, s) => n + s.runNs, 0) / elapsed);
  } finally {
    await machine.close();
  }
}

const spin = (name: string, extra: Partial<DomainSpec> = {}) => dom(name, img("spin"), "report=0 total=0", extra);

describe("the core with guests on pCPU workers", () => {
  it("two domains bounce an event over a static interdomain channel", async () => {
    const r = await run(
      [
        dom("ping", img("pingpong"), "role=ping peer=2 port=5 rounds=200"),
        dom("pong", img("pingpong"), "role=pong peer=1 port=5 rounds=200"),
      ],
      [{ a: 1, aPort: 5, b: 2, bPort: 5 }],
    );
    assert.match(r.out, /^ping: pingpong: ping done 200 rounds$/m);
    assert.match(r.out, /^pong: pingpong: pong done 200 rounds$/m);
    assert.deepEqual(
      r.ends.map((e) => e.reason),
      [0, 0],
      r.out,
    );
  });

  it("a granted page is shared, end_access waits for the unmap, and unmap revokes the mapping", async () => {
    const r = await run(
      [
        dom("granter", img("grantshare"), "role=granter peer=2 port=5 gref=8"),
        dom("mapper", img("grantshare"), "role=mapper peer=1 port=5 gref=8"),
      ],
      [{ a: 1, aPort: 5, b: 2, bPort: 5 }],
    );
    assert.match(r.out, /^mapper: grantshare: mapper mapped ref 8 of domain 1 at 0x[0-9a-f]+, pattern ok$/m);
    assert.match(r.out, /^granter: grantshare: granter sees the mapper's write$/m);
    assert.match(r.out, /^granter: grantshare: granter end_access while mapped refused/m);
    assert.match(r.out, /^granter: grantshare: granter end_access ok after unmap$/m);
    assert.match(r.out, /^mapper: grantshare: unmap revoked access$/m);
    assert.deepEqual(r.ends.map((e) => e.reason).sort(), [0, 0], r.out);
  });

  it("SCHEDOP_poll wakes on its masked port, and returns at its timeout when nothing comes", async () => {
    for (const deterministic of [false, true]) {
      const r = await run(
        [dom("waiter", img("polltest"), "role=waiter port=5"), dom("sender", img("polltest"), "role=sender port=5")],
        [{ a: 1, aPort: 5, b: 2, bPort: 5 }],
        { pcpus: deterministic ? 1 : 2, deterministic },
      );
      assert.match(r.out, /^waiter: polltest: first poll rc 0, pending 1, after \d+ us$/m, r.out);
      assert.match(r.out, /^waiter: polltest: second poll rc 0, pending 0, timed out after \d+ us$/m, r.out);
      assert.deepEqual(r.ends.map((e) => e.reason).sort(), [0, 0], r.out);
    }
  });

  it("a hostile domain survives its own garbage, learns nothing, and harms no one", async () => {
    const r = await run(
      [
        dom("hostile", img("hostile")),
        dom("ping", img("pingpong"), "role=ping peer=3 port=5 rounds=100"),
        dom("pong", img("pingpong"), "role=pong peer=2 port=5 rounds=100"),
      ],
      [{ a: 2, aPort: 5, b: 3, bPort: 5 }],
    );
    assert.match(r.out, /^hostile: hostile: survived \d+ calls/m);
    assert.match(r.out, /^hostile: hostile: text\/rodata and canary unchanged, nothing learned from other domains$/m);
    assert.match(r.out, /^ping: pingpong: ping done 100 rounds$/m);
    assert.deepEqual(
      r.ends.map((e) => e.reason),
      [0, 0, 0],
      r.out,
    );
  });

  it("credit2 weights 2:1 give CPU shares 2:1 within 10%", async () => {
    const [a, b] = await shares("credit2", [spin("heavy", { weight: 512 }), spin("light", { weight: 256 })], 300);
    assert.ok(a! + b! > 0.95, `the pCPU was busy (${a! + b!})`);
    const ratio = a! / b!;
    assert.ok(Math.abs(ratio - 2) / 2 < 0.1, `share ratio ${ratio.toFixed(3)} (${a!.toFixed(3)} : ${b!.toFixed(3)})`);
  });

  it("a credit2 cap of 25% holds even on an otherwise idle pCPU", async () => {
    const [capped] = await shares("credit2", [spin("capped", { cap: 25 })], 300);
    assert.ok(Math.abs(capped! - 0.25) / 0.25 < 0.1, `capped share ${capped!.toFixed(3)}`);
  });

  it("RTDS gives a vCPU its budget against a busy competitor", async () => {
    const [rt, other] = await shares(
      "rtds",
      [spin("rt", { periodUs: 10_000, budgetUs: 2_000 }), spin("other", { periodUs: 10_000, budgetUs: 8_000 })],
      300,
    );
    assert.ok(rt! >= 0.2 * 0.95, `rt share ${rt!.toFixed(3)} (budget 20%)`);
    assert.ok(other! >= 0.8 * 0.95, `other share ${other!.toFixed(3)} (budget 80%)`);
  });

  it("deterministic mode gives identical schedules and output twice", async () => {
    const go = () =>
      run(
        [
          dom("ping", img("pingpong"), "role=ping peer=2 port=5 rounds=50"),
          dom("pong", img("pingpong"), "role=pong peer=1 port=5 rounds=50"),
        ],
        [{ a: 1, aPort: 5, b: 2, bPort: 5 }],
        { pcpus: 1, deterministic: true },
      );
    const first = await go();
    const second = await go();
    assert.ok(first.trace.length > 100, `trace has ${first.trace.length} events`);
    assert.deepEqual(second.trace, first.trace);
    assert.equal(second.out, first.out);
  });
});
