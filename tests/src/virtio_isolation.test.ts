import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";
import { runVirtioGuests } from "./helpers/virtio.js";

/** virtioattack's cases and the rule the device must name for each (virtio.md §8). */
const CASES: ReadonlyArray<[string, string]> = [
  ["head-out-of-range", "head-out-of-range"],
  ["next-out-of-range", "next-out-of-range"],
  ["chain-loop", "chain-too-long"],
  ["indirect-chain-loop", "chain-too-long"],
  ["nested-indirect", "nested-indirect"],
  ["indirect-table-size", "indirect-table-size"],
  ["indirect-with-next", "indirect-with-next"],
  ["buffer-beyond-grant", "buffer-unreachable"],
  ["buffer-not-granted", "buffer-unreachable"],
  ["writable-in-transmitq", "read-from-writable-buffer"],
  ["readable-after-writable", "readable-after-writable"],
  ["unknown-flags", "unknown-flags"],
  ["length-overflow", "length-overflow"],
  ["avail-index-jump", "avail-index-jump"],
  ["queue-size-not-power-of-two", "queue-size"],
  ["ring-not-granted", "ring-unreachable"],
  ["ring-misaligned", "ring-alignment"],
  ["notify-queue-not-ready", "queue-not-ready"],
  ["readable-in-receiveq", "write-to-readable-buffer"],
  ["receive-into-readonly-grant", "buffer-unreachable"],
  ["receive-beyond-grant", "buffer-unreachable"],
];

describe("virtio isolation: a hostile guest's malformed queues", () => {
  it("every attack gives DEVICE_NEEDS_RESET and a log line naming the guest and the rule; the device works after a reset; the host and the other guests carry on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xenon-isolation-"));
    const disk = join(dir, "disk.img");
    writeFileSync(disk, new Uint8Array(256 * 1024));
    const r = await runXenon(
      [
        "run",
        "--timeout",
        "90",
        "--virtio-console",
        "1",
        "--virtio-rng",
        "2",
        "--virtio-blk",
        `3:${disk}`,
        `${guestImagePath("virtioattack")},name=attacker`,
        `${guestImagePath("rngcat")},name=rng,rounds=4`,
        `${guestImagePath("blkstress")},name=blk,rounds=2,blocks=4`,
      ],
      120_000,
      "input for the receiveq cases\n",
    );
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr.toString()}`;
    const lines = out.split("\n");
    for (const [name, rule] of CASES) {
      const reset = lines.indexOf(`(attacker) virtioattack: ${name}: device needs reset`);
      assert.ok(reset >= 0, `${name}: DEVICE_NEEDS_RESET\n${why}`);
      // The backend's line comes before the guest saw the status, and names guest d1 and the rule.
      const logged = lines.findIndex(
        (l, i) => i < reset && /^\(virtio-console-d1\) virtio-console d1: /.test(l) && l.includes(` ${rule}: `),
      );
      assert.ok(logged >= 0, `${name}: a log line naming d1 and ${rule}\n${why}`);
      assert.ok(lines.includes(`(attacker) attack ${name}: recovered`), `${name}: usable after reset\n${why}`);
    }
    assert.equal(
      lines.filter((l) => l.includes("device needs reset") && l.startsWith("(virtio-")).length,
      CASES.length,
    );
    assert.match(
      out,
      new RegExp(`^\\(attacker\\) virtioattack: done ${CASES.length} cases, 0 failures, grant leaks 0$`, "m"),
      why,
    );
    // Refused grant maps carry the core's GNTST status.
    assert.match(out, /grant 501 of d1: map status -1 \(GNTST_general_error\)/);
    // The other guests, on their own driver domains, never noticed.
    assert.match(out, /^\(rng\) rngcat: got 256 random bytes in 4 requests$/m, why);
    assert.match(out, /^\(blk\) blkstress: done 2 rounds, 0 errors$/m, why);
    assert.ok(!lines.some((l) => /^\(virtio-(rng|blk)-d\d\)/.test(l)), `no rule broken on the others\n${why}`);
    assert.equal(r.status, 0, why);
    assert.notDeepEqual(readFileSync(disk).subarray(0, 4096), Buffer.alloc(4096));
  });
});

for (const mode of ["thread", "process"] as const) {
  // Thread mode maps the guest's frames (ForeignMapMemory); process mode copies them through the core (ForeignCopyMemory).
  const how = mode === "thread" ? "map" : "copy";
  describe(`virtio without grants (grant_usage=0), ${mode} mode: guest-physical addresses need foreign ${how}`, () => {
    it("an unprivileged driver domain is refused every page (-EPERM, named in its log); the guest sees the device fail", async () => {
      const r = await runVirtioGuests(
        [{ image: "rngcat", bootargs: "rounds=1", devices: [{ kind: "rng" }], grants: false }],
        {
          mode,
        },
      );
      const out = r.outs[0]!;
      const why = `${out}\n${r.log.join("\n")}`;
      assert.match(out, /^rngcat: device at 0x2000000 port 20 backend d\d+ grants 0$/m, why);
      assert.match(out, /^rngcat: FAILED request 0 /m, why);
      assert.notEqual(r.ends[0]!.reason, 0);
      assert.ok(
        r.log.some((l) =>
          new RegExp(
            `^virtio-rng d1: ring-unreachable: descriptor table: foreign ${how} of d1 gfn 0x[0-9a-f]+ refused: -EPERM \\(this backend is not privileged\\); device needs reset$`,
          ).test(l),
        ),
        why,
      );
    });

    it("a privileged (dom0-like) driver domain reaches the guest's pages: rngcat and blkstress work with plain addresses", async () => {
      const dir = mkdtempSync(join(tmpdir(), "xenon-nogrants-"));
      const disk = join(dir, "disk.img");
      writeFileSync(disk, new Uint8Array(256 * 1024));
      const r = await runVirtioGuests(
        [
          { image: "rngcat", bootargs: "rounds=2", devices: [{ kind: "rng" }], grants: false },
          { image: "blkstress", bootargs: "rounds=1 blocks=4", devices: [{ kind: "blk", path: disk }], grants: false },
        ],
        { privileged: true, mode },
      );
      const why = `${r.outs.join("\n--\n")}\n${r.log.join("\n")}`;
      assert.match(r.outs[0]!, /^rngcat: device at 0x2000000 port 20 backend d\d+ grants 0$/m, why);
      assert.match(r.outs[0]!, /^rngcat: got 128 random bytes in 2 requests$/m, why);
      assert.match(r.outs[1]!, /^blkstress: disk 512 sectors, id xenon-262144, backend d\d+ grants 0$/m, why);
      assert.match(r.outs[1]!, /^blkstress: done 1 rounds, 0 errors$/m, why);
      assert.deepEqual(
        r.ends.map((e) => e.reason),
        [0, 0],
        why,
      );
      assert.deepEqual(r.log, [], why);
      assert.notDeepEqual(readFileSync(disk).subarray(0, 4096), Buffer.alloc(4096));
    });
  });
}
