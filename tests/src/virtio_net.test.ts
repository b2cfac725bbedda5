import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";

/**
 * virtio-net end to end: guests with a virtio-net device each (its own grant-only driver domain)
 * on the host's switch, talking the frame protocol of netping / kvstore (guests README).
 */
const netping = guestImagePath("netping");
const kvstore = guestImagePath("kvstore");

async function run(args: string[]): Promise<{ status: number | null; out: string }> {
  const r = await runXenon(["run", "--timeout", "90", ...args], 120_000);
  return { status: r.status, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe("virtio-net over the host switch (xenon run --virtio-net)", () => {
  it("two guests ping each other; MACs given and defaulted (00:16:3e:<domid>:<n>)", async () => {
    const r = await run([
      "--virtio-net",
      "1",
      "--virtio-net",
      "2:00:16:3e:00:00:42",
      `${netping},mode=ping,peer=00:16:3e:00:00:42,count=4,size=100,stop=1`,
      `${netping},mode=echo`,
    ]);
    assert.equal(r.status, 0, r.out);
    assert.match(
      r.out,
      /^\(netping\) netping: mac 00:16:3e:00:01:00 mtu 1500 backend d\d+ grants 1 mode ping$/m,
      r.out,
    );
    for (let i = 0; i < 4; i++)
      assert.match(r.out, new RegExp(`^\\(netping\\) netping: reply seq ${i} from 00:16:3e:00:00:42$`, "m"), r.out);
    assert.match(r.out, /^\(netping\) netping: done 4\/4 replies, 0 lost$/m);
    assert.match(r.out, /^\(netping\) netping: echo answered 4 pings/m);
    const bad = await runXenon(["run", "--virtio-net", "1:ff:ff:ff:ff:ff:ff", netping]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.toString(), /not a unicast MAC/);
  });

  it("netping stores keys in kvstore; they survive a restart of kvstore with the same disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xenon-kvstore-"));
    const disk = join(dir, "kv.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    const kv = (put: number, seed: number) => [
      "--virtio-blk",
      `1:${disk}`,
      "--virtio-net",
      "1:00:16:3e:00:00:0a",
      "--virtio-net",
      "2",
      `${kvstore},stop=1`,
      `${netping},mode=kv,peer=00:16:3e:00:00:0a,keys=10,put=${put},seed=${seed},stop=1`,
    ];
    const first = await run(kv(1, 5));
    assert.equal(first.status, 0, first.out);
    assert.match(first.out, /^\(kvstore\) kvstore: formatted for 64 slots$/m, first.out);
    assert.match(first.out, /^\(netping\) netping: kv put 10 get 10 verified 10 errors 0$/m, first.out);
    assert.match(first.out, /^\(kvstore\) kvstore: stopped after \d+ requests, 10 keys$/m, first.out);
    assert.ok(readFileSync(disk).includes(Buffer.from("value-3-5-")), "the values are on the disk itself");
    // A new kvstore on the same disk: nothing is put, every key is read back.
    const second = await run(kv(0, 5));
    assert.equal(second.status, 0, second.out);
    assert.match(second.out, /^\(kvstore\) kvstore: disk 128 sectors, mac 00:16:3e:00:00:0a, 10 keys loaded$/m);
    assert.match(second.out, /^\(netping\) netping: kv put 0 get 10 verified 10 errors 0$/m, second.out);
    // And a netping expecting other values notices.
    const wrong = await run(kv(0, 6));
    assert.notEqual(wrong.status, 0, wrong.out);
    assert.match(wrong.out, /^\(netping\) netping: kv put 0 get 10 verified 0 errors 10$/m, wrong.out);
  });

  it("process mode: frames cross the child driver domains' streams; netping and kvstore talk as in thread mode", async () => {
    const disk = join(mkdtempSync(join(tmpdir(), "xenon-kvstore-pm-")), "kv.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    const r = await run([
      "--driver-domain-mode",
      "process",
      "--virtio-blk",
      `1:${disk}`,
      "--virtio-net",
      "1:00:16:3e:00:00:0a",
      "--virtio-net",
      "2",
      `${kvstore},stop=1`,
      `${netping},mode=kv,peer=00:16:3e:00:00:0a,keys=10,stop=1`,
    ]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /^\(netping\) netping: kv put 10 get 10 verified 10 errors 0$/m, r.out);
    assert.match(r.out, /^\(kvstore\) kvstore: stopped after \d+ requests, 10 keys$/m, r.out);
  });

  it("a guest sending malformed frames and breaking its transmit queue does not hurt the others", async () => {
    const r = await run([
      "--virtio-net",
      "1",
      "--virtio-net",
      "2:00:16:3e:00:00:02",
      "--virtio-net",
      "3:00:16:3e:00:00:03",
      `${netping},mode=hostile`,
      `${netping},mode=ping,peer=00:16:3e:00:00:03,count=6,stop=1`,
      `${netping},mode=echo`,
    ]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /^\(netping\) netping: hostile sent \d+ malformed frames$/m, r.out);
    assert.match(r.out, /^\(netping\) netping: hostile short chain: -5, device status 0x4f$/m, r.out);
    assert.match(r.out, /virtio-net d1: transmit dropped: gso_type 1 without GSO/);
    assert.match(r.out, /virtio-net d1: request-malformed: queue 1: transmit chain 0 has 4 readable bytes/);
    assert.match(r.out, /^\(netping\) netping: done 6\/6 replies, 0 lost$/m, r.out);
    assert.match(r.out, /^\(netping\) netping: echo answered 6 pings/m, r.out);
  });
});
