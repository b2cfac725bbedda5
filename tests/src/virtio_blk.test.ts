import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";
import { runVirtioGuest } from "./helpers/virtio.js";

for (const mode of ["thread", "process"] as const)
  describe(`virtio-blk through an IOREQ server in a driver domain (${mode} mode), grants only`, () => {
    it("blkstress writes, flushes, reads back and verifies patterned blocks on a raw image", async () => {
      const dir = mkdtempSync(join(tmpdir(), "xenon-blkstress-"));
      const path = join(dir, "disk.img");
      writeFileSync(path, new Uint8Array(1 << 20));
      const r = await runVirtioGuest("blkstress", "rounds=2 blocks=8", { kind: "blk", path }, { mode });
      const why = `${r.detail ?? ""}\n${r.out}\n${r.log.join("\n")}`;
      assert.match(r.out, /^blkstress: disk 2048 sectors, id xenon-1048576, backend d\d+ grants 1$/m, why);
      assert.match(r.out, /^blkstress: round 0 wrote 8 verified 8 errors 0$/m, why);
      assert.match(r.out, /^blkstress: round 1 wrote 8 verified 8 errors 0$/m, why);
      assert.match(r.out, /^blkstress: done 2 rounds, 0 errors$/m, why);
      assert.equal(r.reason, 0, why);
      // The last round's blocks are on the disk itself.
      const disk = readFileSync(path);
      assert.notDeepEqual(disk.subarray(0, 4096), Buffer.alloc(4096));
      assert.deepEqual(disk.subarray(8 * 4096, 9 * 4096), Buffer.alloc(4096), "nothing past the blocks written");
    });

    it("a read-only disk: writes fail with IOERR, the guest reports them", async () => {
      const dir = mkdtempSync(join(tmpdir(), "xenon-blkstress-"));
      const path = join(dir, "disk.img");
      writeFileSync(path, new Uint8Array(64 * 1024));
      const r = await runVirtioGuest("blkstress", "rounds=1 blocks=2", { kind: "blk", path, readOnly: true }, { mode });
      assert.match(r.out, /^blkstress: round 0 wrote 0 verified 0 errors \d+$/m, r.out);
      assert.notEqual(r.reason, 0);
      assert.deepEqual(readFileSync(path), Buffer.alloc(64 * 1024));
    });
  });

describe("virtio-blk frontend paths (thread mode)", () => {
  it("the frontend's EVENT_IDX / INDIRECT_DESC / polling switches: each path moves the same verified data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xenon-blkstress-"));
    const path = join(dir, "disk.img");
    writeFileSync(path, new Uint8Array(256 * 1024));
    for (const [args, ev, ind, poll] of [
      ["", 1, 1, 0],
      ["indirect_desc=2", 1, 1, 0],
      ["event_idx=0 indirect_desc=0", 0, 0, 0],
      ["indirect_desc=0", 1, 0, 0],
      ["virtio_poll=1", 1, 1, 1],
      ["virtio_poll=1 event_idx=0", 0, 1, 1],
    ] as const) {
      const r = await runVirtioGuest("blkstress", `rounds=1 blocks=4 ${args}`, { kind: "blk", path });
      const why = `${args}\n${r.detail ?? ""}\n${r.out}\n${r.log.join("\n")}`;
      assert.match(r.out, new RegExp(`^blkstress: event_idx ${ev} indirect ${ind} poll ${poll}$`, "m"), why);
      assert.match(r.out, /^blkstress: done 1 rounds, 0 errors$/m, why);
      const m = /^blkstress: kicks (\d+) skipped (\d+) interrupts (\d+) grant leaks 0$/m.exec(r.out);
      assert.ok(m !== null, why);
      // 10 requests (GET_ID, 4 writes, FLUSH, 4 reads), one at a time: the device asks for each kick.
      assert.equal(Number(m[1]) + Number(m[2]), 10, why);
      // Polling asks for no interrupt (used_event left behind, or NO_INTERRUPT): the device honours it.
      if (poll === 1) assert.equal(Number(m[3]), 0, `no interrupts while polling\n${why}`);
      else assert.ok(Number(m[3]) > 0, why);
      assert.equal(r.reason, 0, why);
      assert.deepEqual(r.log, [], why);
    }
  });
});

describe("xenon run --virtio-rng / --virtio-blk", () => {
  it("attaches the devices, each with its own driver domain, and the guests use them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xenon-run-virtio-"));
    const disk = join(dir, "disk.img");
    writeFileSync(disk, new Uint8Array(256 * 1024));
    const r = await runXenon([
      "run",
      "--timeout",
      "60",
      "--virtio-rng",
      "1",
      "--virtio-blk",
      `2:${disk}`,
      `${guestImagePath("rngcat")},rounds=1`,
      `${guestImagePath("blkstress")},rounds=1,blocks=2`,
    ]);
    const out = r.stdout.toString();
    assert.equal(r.status, 0, `${out}\n${r.stderr.toString()}`);
    assert.match(out, /^\(rngcat\) rngcat: got 64 random bytes in 1 requests$/m);
    assert.match(out, /^\(blkstress\) blkstress: done 1 rounds, 0 errors$/m);
    // The same devices from one driver domain in a child process.
    const shared = await runXenon([
      "run",
      "--timeout",
      "60",
      "--virtio-shared",
      "--driver-domain-mode",
      "process",
      "--virtio-rng",
      "1",
      "--virtio-blk",
      `2:${disk}`,
      `${guestImagePath("rngcat")},rounds=1`,
      `${guestImagePath("blkstress")},rounds=1,blocks=2`,
    ]);
    const sout = shared.stdout.toString();
    assert.equal(shared.status, 0, `${sout}\n${shared.stderr.toString()}`);
    assert.match(sout, /^\(rngcat\) rngcat: device at 0x2000000 port 60 backend d3 grants 1$/m);
    assert.match(sout, /^\(blkstress\) blkstress: disk 512 sectors, id xenon-262144, backend d3 grants 1$/m);
    assert.match(sout, /^\(blkstress\) blkstress: done 1 rounds, 0 errors$/m);
    const badMode = await runXenon(["run", "--driver-domain-mode", "fiber", guestImagePath("hello")]);
    assert.equal(badMode.status, 2);
    assert.match(badMode.stderr.toString(), /unknown driver domain mode 'fiber'/);
    const bad = await runXenon(["run", "--virtio-blk", "9:/nonexistent", guestImagePath("hello")]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.toString(), /virtio blk: no domain 9/);
  });
});
