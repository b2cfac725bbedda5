import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FAULT_KINDS } from "@xenon/backends";
import { runVirtioGuests } from "./helpers/virtio.js";
import { until } from "./helpers/wait.js";

const waitFor = (cond: () => boolean, ms: number, what: string) =>
  until(cond, ms).catch(() => {
    throw new Error(`timed out waiting for ${what}`);
  });

const rounds = (out: string) => out.split("\n").filter((l) => /^blkstress: round \d+ /.test(l)).length;

for (const mode of ["thread", "process"] as const)
  describe(`driver-domain faults are contained and the domain restarts (${mode} mode)`, () => {
    it("throw, hang, exit and out-of-memory mid-I/O: blkstress loses no acknowledged write, the other guest runs on", async () => {
      const dir = mkdtempSync(join(tmpdir(), "xenon-ddfault-"));
      const path = join(dir, "disk.img");
      writeFileSync(path, new Uint8Array(512 * 1024));
      const r = await runVirtioGuests(
        [
          { image: "blkstress", bootargs: "rounds=14 blocks=16", devices: [{ kind: "blk", path }] },
          { image: "rngcat", bootargs: "bytes=16 rounds=400", devices: [{ kind: "rng" }] },
        ],
        {
          mode,
          restart: true,
          faultHooks: true,
          hangTimeoutMs: 2000,
          memoryLimitMiB: 48,
          timeoutMs: 150_000,
          during: async (run) => {
            const blk = run.driverDomains[0]!;
            for (const [i, kind] of FAULT_KINDS.entries()) {
              // Mid-I/O: a few rounds in, between the previous restart and the end.
              await waitFor(() => rounds(run.outs[0]!) >= 2 + 3 * i, 120_000, `round ${2 + 3 * i}`);
              const before = blk.restarts;
              blk.inject(kind);
              await waitFor(() => blk.restarts > before, 60_000, `restart after ${kind}`);
            }
          },
        },
      );
      const why = `${r.outs.join("\n--\n")}\n${r.log.join("\n")}`;
      // Each fault took the domain down once (a loaded machine may add a missed heartbeat).
      assert.ok(r.driverDomains[0]!.restarts >= 4, why);
      const deaths = r.log.filter((l) => l.includes("domain destroyed")).join("\n");
      for (const reason of [/threw/, /stopped answering/, /exited \(3\)/, /out of memory/])
        assert.match(deaths, reason, why);
      // Every round verified; the driver reset the device once per restart at least.
      assert.match(r.outs[0]!, /^blkstress: done 14 rounds, 0 errors$/m, why);
      assert.doesNotMatch(r.outs[0]!, /errors [1-9]/, why);
      const resets = Number(/^blkstress: device reset (\d+) times$/m.exec(r.outs[0]!)?.[1] ?? 0);
      assert.ok(resets >= 4, why);
      // The other guest's driver domain never noticed.
      assert.match(r.outs[1]!, /^rngcat: got 6400 random bytes in 400 requests$/m, why);
      assert.equal(r.driverDomains[1]!.restarts, 0);
      assert.deepEqual(
        r.ends.map((e) => e.reason),
        [0, 0],
        why,
      );
    });
  });
