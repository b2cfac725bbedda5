import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { type BuiltSystem, buildSystem, restoreDomainFromFile, saveDomainToFile } from "@xenon/toolstack";
import { until } from "./helpers/wait.js";

/**
 * xl save / xl restore on a running machine: a spin guest (xorshift chain; its checksum depends on
 * every iteration and on its starting value, kept in its registers and stack) is saved mid-run,
 * destroyed, restored from the file as a new domain, and finishes with the checksum of a run that
 * was never interrupted — registers, memory and the loop counter came through intact.
 */
const TOTAL = 120_000;
const REPORT = 10_000;
const spin = {
  path: guestImagePath("spin"),
  name: "counter",
  memoryMiB: 2,
  bootargs: `name=counter report=${REPORT} total=${TOTAL}`,
};

describe("xl save / restore of a running domain", () => {
  const dir = mkdtempSync(join(tmpdir(), "xenon-save-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("continues counting from where it was, with the checksum of an uninterrupted run", async () => {
    // The reference: the same domain (same domid, so the same starting value) never saved.
    const refLines: string[] = [];
    const ref = buildSystem({ domains: [spin], pcpus: 1, console: (_n, l) => refLines.push(l) });
    await ref.machine.run();
    await ref.machine.close();
    const refDone = refLines.find((l) => l.includes("done"));
    assert.ok(refDone, refLines.join("\n"));

    const before: string[] = [];
    const sys: BuiltSystem = buildSystem({ domains: [spin], pcpus: 1, console: (_n, l) => before.push(l) });
    try {
      sys.machine.start();
      const domid = sys.domids[0]!;
      await until(() => before.some((l) => l.includes("progress")));
      const file = join(dir, "counter.save");
      const saved = await saveDomainToFile(sys.machine, domid, file);
      assert.equal(sys.hv.domains.getLive(domid), undefined, "the saved domain is destroyed");
      const bytes = readFileSync(file);
      assert.equal(bytes.subarray(0, 32).toString("latin1"), "Xen saved domain, xl format\n \0 \r");
      assert.equal(saved.bytes, bytes.length);
      assert.ok(saved.pages >= 512, `a 2 MiB guest sends its pages (${saved.pages})`);
      const lastBefore = Math.max(
        ...before.filter((l) => l.includes("progress")).map((l) => Number(l.split(" ").pop())),
      );
      assert.ok(!before.some((l) => l.includes("done")), "saved before it finished");

      const afterLines: string[] = [];
      let partial = "";
      const r = restoreDomainFromFile(sys.machine, file, {
        console: (b) => {
          const parts = (partial + Buffer.from(b).toString("latin1")).split("\n");
          partial = parts.pop() ?? "";
          afterLines.push(...parts);
        },
      });
      assert.equal(sys.hv.domains.getLive(r.domid), r.domain, "a new live domain");
      assert.equal(r.domain.name, "counter");
      await until(() => afterLines.some((l) => l.includes("done")));
      assert.ok(!afterLines.some((l) => l.includes("start")), "it did not boot again");
      const counts = afterLines.filter((l) => l.includes("progress")).map((l) => Number(l.split(" ").pop()));
      assert.equal(counts[0], lastBefore + REPORT, `counting goes on after ${lastBefore}: ${afterLines.join(" | ")}`);
      for (let i = 1; i < counts.length; i++) assert.equal(counts[i], counts[i - 1]! + REPORT);
      assert.equal(counts.at(-1), TOTAL);
      assert.equal(
        afterLines.find((l) => l.includes("done")),
        refDone,
        "same checksum as the uninterrupted run",
      );
    } finally {
      await sys.machine.close();
    }
  });
});
