import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runSystem } from "@xenon/toolstack";

/**
 * A small control domain written in C (ctl.elf, issue 6's "Zephyr as dom0" analogue) builds a
 * domain from nothing through domctl/memory_op — createdomain, max_mem, populate_physmap, the
 * payload kernel copied in through foreign mappings, setvcpucontext — runs it, waits for it to
 * shut down, destroys it and lists the domains before and after.
 */
async function boot(privileged: boolean, bootargs = "pages=256") {
  const lines: string[] = [];
  const r = await runSystem({
    domains: [
      { path: guestImagePath("ctl"), name: "ctl", memoryMiB: 4, bootargs, roles: privileged ? ["control"] : [] },
    ],
    pcpus: 2,
    console: (_n, line) => lines.push(line),
    timeoutMs: 60_000,
  });
  const out = lines.join("\n");
  assert.equal(r.timedOut, false, out);
  return { r, out };
}

describe("ctl.elf: a guest control domain", () => {
  it("creates, builds, runs, lists and destroys a domain through domctl", async () => {
    const { r, out } = await boot(true);
    assert.match(out, /^ctl: host has 2 pCPUs/m, out);
    assert.match(out, /^ctl: before: 1 domains\nctl: {3}d1 mem \d+ KiB vcpus 1 running pool 0$/m, out);
    assert.match(out, /^ctl: created d2 in cpupool 0$/m, out);
    assert.match(out, /^ctl: d2 has 1024 KiB of RAM at 0x80000000$/m, out);
    assert.match(out, /^ctl: loaded \d+ segments of the \d+-byte payload, entry 0x800/m, out);
    assert.match(out, /^ctl: built: 2 domains\n(.*\n)?ctl: {3}d2 mem 10\d\d KiB vcpus 1 paused pool 0$/m, out);
    assert.match(out, /^ctl: d2 shut down/m, out);
    assert.match(out, /^ctl: after: 1 domains$/m, out);
    assert.match(out, /^ctl: ok$/m, out);
    // The built domain ran its kernel to the end: it powered off (reason 0), it did not crash.
    assert.deepEqual(
      r.ends.map((e) => [e.domid, e.reason]).sort(),
      [
        [1, 0],
        [2, 0],
      ],
      out,
    );
  });

  it("without the privileged flag it is refused at the first control hypercall", async () => {
    const { r, out } = await boot(false);
    assert.match(out, /^ctl: physinfo failed \(-1\): not a control domain\?$/m, out);
    assert.deepEqual(
      r.ends.map((e) => e.reason),
      [3],
    );
  });
});
