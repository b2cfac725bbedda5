import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runSystem } from "@xenon/toolstack";

/**
 * Secondary vCPUs (VCPUOP_initialise / up / down / is_up) on pCPU worker threads: smp.elf starts
 * its vCPUs, they share a counter with amoadd, take themselves down, and one is brought up again
 * and resumes where it stopped.
 */
async function smp(vcpus: number, pcpus: number, deterministic = false) {
  const lines: string[] = [];
  const r = await runSystem({
    domains: [
      {
        path: guestImagePath("smp"),
        name: "smp",
        memoryMiB: 2,
        vcpus,
        bootargs: `vcpus=${vcpus} rounds=20000`,
      },
    ],
    pcpus,
    timeMode: deterministic ? "instructions" : "host",
    console: (_name, line) => lines.push(line),
    timeoutMs: 60_000,
  });
  const out = lines.join("\n");
  assert.equal(r.timedOut, false, out);
  return { r, out };
}

describe("secondary vCPUs", () => {
  for (const [vcpus, pcpus] of [
    [2, 2],
    [4, 2],
    [3, 1],
  ] as const) {
    it(`${vcpus} vCPUs on ${pcpus} pCPU(s): every increment lands, down and up again work`, async () => {
      const { r, out } = await smp(vcpus, pcpus);
      assert.match(out, /^smp: is_up\(0\) 1, is_up\(1\) 0, up before initialise -22$/m, out);
      assert.match(
        out,
        new RegExp(`^smp: ${vcpus} vCPUs added ${vcpus * 20000} \\(expected ${vcpus * 20000}\\)`, "m"),
        out,
      );
      assert.match(out, /^smp: vCPU 1 resumed after VCPUOP_down and went down again$/m, out);
      assert.deepEqual(
        r.ends.map((e) => e.reason),
        [0],
        out,
      );
    });
  }

  it("in deterministic mode too", async () => {
    const { out } = await smp(2, 1, true);
    assert.match(out, /^smp: ok$/m, out);
  });
});
