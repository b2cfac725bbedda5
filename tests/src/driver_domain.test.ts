import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runVirtioGuests } from "./helpers/virtio.js";

for (const mode of ["thread", "process"] as const)
  describe(`a driver domain serving several devices (${mode} mode)`, () => {
    it("one domain, one port, one loop: blk and rng for one guest and rng for another", async () => {
      const dir = mkdtempSync(join(tmpdir(), "xenon-dd-"));
      const path = join(dir, "disk.img");
      writeFileSync(path, new Uint8Array(256 * 1024));
      const r = await runVirtioGuests(
        [
          { image: "blkstress", bootargs: "rounds=2 blocks=4", devices: [{ kind: "rng" }, { kind: "blk", path }] },
          { image: "rngcat", bootargs: "bytes=32 rounds=2", devices: [{ kind: "rng" }] },
        ],
        { shared: true, mode },
      );
      const why = `${r.outs.join("\n--\n")}\n${r.log.join("\n")}`;
      assert.equal(r.driverDomains.length, 1);
      const dd = r.driverDomains[0]!.domid;
      // Both guests name the same backend domain; blkstress found its disk behind the rng.
      assert.match(
        r.outs[0]!,
        new RegExp(`^blkstress: disk 512 sectors, id xenon-262144, backend d${dd} grants 1$`, "m"),
        why,
      );
      assert.match(r.outs[0]!, /^blkstress: done 2 rounds, 0 errors$/m, why);
      assert.match(r.outs[1]!, new RegExp(`^rngcat: device at 0x2000000 port 20 backend d${dd} grants 1$`, "m"), why);
      assert.match(r.outs[1]!, /^rngcat: got 64 random bytes in 2 requests$/m, why);
      assert.deepEqual(
        r.ends.map((e) => e.reason),
        [0, 0],
        why,
      );
      assert.notDeepEqual(readFileSync(path).subarray(0, 4096), Buffer.alloc(4096));
    });
  });
