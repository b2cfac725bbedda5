import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";

/**
 * Every virtio device in both driver-domain modes, with and without grants: one `xenon run` per
 * (mode, grant_usage) with five guests — rngcat (rng), blkstress (blk), vconsole (console, fed
 * from xenon's stdin), and two netpings (net, ping <-> echo over xenbr0) — all six devices in one
 * driver domain (--virtio-shared: half the time of one each, which the per-device tests cover).
 * grant_usage=0 makes that driver domain privileged (it foreign-maps the guests' memory); the
 * guests see no `iommus` and use guest-physical addresses (they print `grants 0`).
 * What each run must show: random bytes that differ, blkstress's blocks verified by the guest and
 * found on the disk by the host word for word, the host's input echoed back, every ping answered.
 */
const BLOCKS = 4;
const DISK_BYTES = 64 * 1024;
const FILL = 0xa5;
const PEER = "00:16:3e:00:00:42";
const INPUT = "hello matrix\nquit\n";

/** blkstress's word i of block b in round r (packages/guests/c/images/blkstress.c). */
function pattern(r: number, b: number, i: number): number {
  return (Math.imul(r, 0x9e3779b9) ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(i, 0xc2b2ae35) ^ 0x5bd1e995) >>> 0;
}

async function runMatrix(mode: "thread" | "process", grantUsage: 0 | 1): Promise<void> {
  const disk = join(mkdtempSync(join(tmpdir(), "xenon-matrix-")), "disk.img");
  writeFileSync(disk, Buffer.alloc(DISK_BYTES, FILL));
  const img = guestImagePath;
  const r = await runXenon(
    [
      "run",
      "--timeout",
      "90",
      "--driver-domain-mode",
      mode,
      "--virtio-shared",
      "--virtio-grant-usage",
      String(grantUsage),
      "--virtio-rng",
      "1",
      "--virtio-blk",
      `2:${disk}`,
      "--virtio-console",
      "3",
      "--virtio-net",
      "4",
      "--virtio-net",
      `5:${PEER}`,
      `${img("rngcat")},rounds=2`,
      `${img("blkstress")},rounds=1,blocks=${BLOCKS}`,
      `${img("vconsole")}`,
      `${img("netping")},mode=ping,peer=${PEER},count=4,size=100,stop=1`,
      `${img("netping")},mode=echo,name=echo`,
    ],
    120_000,
    INPUT,
  );
  const out = r.stdout.toString();
  const why = `${out}\n${r.stderr.toString()}`;
  assert.equal(r.status, 0, why);
  const g = grantUsage;
  // Every guest found its device with the grant usage asked for.
  assert.match(
    out,
    new RegExp(`^\\(rngcat\\) rngcat: device at 0x2000000 port 60 backend d\\d+ grants ${g}$`, "m"),
    why,
  );
  assert.match(
    out,
    new RegExp(`^\\(blkstress\\) blkstress: disk 128 sectors, id xenon-${DISK_BYTES}, backend d\\d+ grants ${g}$`, "m"),
    why,
  );
  assert.match(out, new RegExp(`^\\(vconsole\\) vconsole: device at 0x2000000 backend d\\d+ grants ${g} `, "m"), why);
  assert.match(
    out,
    new RegExp(`^\\(netping\\) netping: mac 00:16:3e:00:04:00 mtu 1500 backend d\\d+ grants ${g} mode ping$`, "m"),
    why,
  );
  assert.match(
    out,
    new RegExp(`^\\(echo\\) netping: mac ${PEER} mtu 1500 backend d\\d+ grants ${g} mode echo$`, "m"),
    why,
  );
  // rng: two rounds of 64 bytes, different from each other.
  const hex = [...out.matchAll(/^\(rngcat\) rngcat: ([0-9a-f]{64})$/gm)].map((m) => m[1]);
  assert.equal(hex.length, 2, why);
  assert.notEqual(hex[0], hex[1], why);
  assert.match(out, /^\(rngcat\) rngcat: got 128 random bytes in 2 requests$/m, why);
  // blk: the guest verified what it wrote, and the host finds exactly that on the disk.
  assert.match(
    out,
    new RegExp(`^\\(blkstress\\) blkstress: round 0 wrote ${BLOCKS} verified ${BLOCKS} errors 0$`, "m"),
    why,
  );
  const bytes = readFileSync(disk);
  for (let b = 0; b < BLOCKS; b++)
    for (let i = 0; i < 1024; i++)
      assert.equal(bytes.readUInt32LE(b * 4096 + i * 4), pattern(0, b, i), `block ${b} word ${i}\n${why}`);
  assert.ok(
    bytes.subarray(BLOCKS * 4096).every((x) => x === FILL),
    "nothing written past the blocks",
  );
  // console: the host's input, echoed line by line, between the device's own lines.
  const lines = out.split("\n").filter((l) => /^\(vconsole\) (vcon|echo): /.test(l));
  assert.deepEqual(
    lines,
    [
      "(vconsole) vcon: emergency write",
      "(vconsole) vcon: hello through virtio-console",
      "(vconsole) echo: hello matrix",
      "(vconsole) vcon: bye",
    ],
    why,
  );
  assert.match(out, new RegExp(`^\\(vconsole\\) vconsole: done 2 lines, ${INPUT.length} bytes received, `, "m"), why);
  // net: every ping answered by the echo guest (netping checks each reply's payload).
  for (let i = 0; i < 4; i++)
    assert.match(out, new RegExp(`^\\(netping\\) netping: reply seq ${i} from ${PEER}$`, "m"), why);
  assert.match(out, /^\(netping\) netping: done 4\/4 replies, 0 lost$/m, why);
  assert.match(out, /^\(echo\) netping: echo answered 4 pings/m, why);
  assert.doesNotMatch(out, /payload differs|FAILED/, why);
  // The driver domain logged no broken rule and no refused page.
  assert.doesNotMatch(out, /^\(dd-virtio\)/m, why);
}

describe("virtio matrix: rng, blk, console and net in thread and process mode, with and without grants", () => {
  for (const mode of ["thread", "process"] as const)
    for (const grantUsage of [1, 0] as const)
      it(`${mode} mode, grant_usage=${grantUsage}`, () => runMatrix(mode, grantUsage));

  it("--virtio-grant-usage takes 0 or 1 only", async () => {
    const r = await runXenon(["run", "--virtio-grant-usage", "yes", "--virtio-rng", "1", guestImagePath("rngcat")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr.toString(), /^xenon: run: --virtio-grant-usage 'yes' is neither 0 nor 1$/m);
  });
});
