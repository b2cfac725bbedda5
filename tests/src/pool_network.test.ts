import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { guestImagePath } from "@xenon/guests";
import { runProcess, XENON_BIN } from "./helpers/run.js";
import { until } from "./helpers/wait.js";

/**
 * The pool's L2 network: two `xenon host` processes in a pool, each with its switch, joined over
 * the pool link. kvstore (its disk and vif served by a driver domain on host a) answers netping
 * on host b by MAC, as if they shared one wire; the guests need no idea there are two hosts.
 */
const XL_BIN = fileURLToPath(new URL("../../packages/toolstack/bin/xl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "xenon-pool-net-"));
const secret = join(dir, "secret");
writeFileSync(secret, "the pool network's secret\n");
const procs: ChildProcess[] = [];

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

async function host(name: string, join?: string): Promise<{ url: string; out: () => string }> {
  const args = ["host", "--pcpus", "1", "--memory", "96", "--console", "--name", name, "--pool-secret-file", secret];
  const proc = spawn(process.execPath, [XENON_BIN, ...args, ...(join ? ["--join", join] : [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  procs.push(proc);
  let out = "";
  proc.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  await until(() => /XENON_HOST=\S+\n/.test(out) || proc.exitCode !== null, 30_000);
  const url = /XENON_HOST=(\S+)\n/.exec(out)?.[1];
  assert.ok(url !== undefined, `host ${name} did not start: ${out}`);
  return { url, out: () => out };
}

async function create(url: string, name: string, text: string): Promise<void> {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, text);
  const r = await runProcess(process.execPath, [XL_BIN, "-H", url, "create", file], 30_000);
  assert.equal(r.status, 0, `xl create ${name}: ${r.stderr.toString()}`);
}

describe("a network that spans the pool's hosts", () => {
  it("netping on host b stores and reads back keys in kvstore on host a, over the pool link", async () => {
    const a = await host("neta");
    const b = await host("netb", a.url);
    await until(() => /linked/.test(a.out()) && /linked/.test(b.out()), 30_000);
    writeFileSync(join(dir, "kv.img"), new Uint8Array(256 * 1024));
    await create(
      a.url,
      "kv",
      'name = "kv"\nkernel = "kvstore.elf"\nmemory = 4\ncmdline = "stop=1"\n' +
        'disk = [ "kv.img,raw,xvda,rw" ]\nvif = [ "mac=00:16:3e:00:0a:01" ]\n',
    );
    await until(() => /^\(kv\) kvstore: disk \d+ sectors, mac 00:16:3e:00:0a:01/m.test(a.out()), 60_000);
    await create(
      b.url,
      "client",
      'name = "client"\nkernel = "netping.elf"\nmemory = 4\n' +
        'cmdline = "mode=kv peer=00:16:3e:00:0a:01 keys=8 stop=1"\nvif = [ "mac=00:16:3e:00:0b:01" ]\n',
    );
    const why = () => `--- a\n${a.out()}\n--- b\n${b.out()}`;
    await until(() => /^\(client\) netping: kv put 8 get 8 verified 8 errors 0$/m.test(b.out()), 60_000).catch(() =>
      assert.fail(`no conversation across the hosts\n${why()}`),
    );
    await until(() => /^\(kv\) kvstore: stopped after \d+ requests, 8 keys$/m.test(a.out()), 30_000).catch(() =>
      assert.fail(`kvstore did not see the STOP\n${why()}`),
    );
    assert.match(a.out(), /xenbr0 joined to netb's over the link/);
  });

  it("kvstore (grant_usage=0: privileged backends, guest-physical addresses) migrates to the other host in the middle of a conversation: no request lost, every key verified", async () => {
    const a = await host("mig-a");
    const b = await host("mig-b", a.url);
    await until(() => /linked/.test(a.out()) && /linked/.test(b.out()), 30_000);
    writeFileSync(join(dir, "kv2.img"), new Uint8Array(256 * 1024));
    await create(
      a.url,
      "kv2",
      'name = "kv2"\nkernel = "kvstore.elf"\nmemory = 4\ncmdline = "stop=1"\n' +
        'disk = [ "kv2.img,raw,xvda,rw,grant_usage=0" ]\nvif = [ "mac=00:16:3e:00:0c:01,grant_usage=0" ]\n',
    );
    await until(() => /^\(kv2\) kvstore: disk \d+ sectors/m.test(a.out()), 60_000);
    await create(
      b.url,
      "talker",
      'name = "talker"\nkernel = "netping.elf"\nmemory = 4\n' +
        'cmdline = "mode=kv peer=00:16:3e:00:0c:01 keys=60 stop=1 timeout=200 tries=100"\n' +
        'vif = [ "mac=00:16:3e:00:0d:01" ]\n',
    );
    const why = () => `--- a\n${a.out()}\n--- b\n${b.out()}`;
    // As soon as the conversation starts (it PUTs, then GETs and verifies, then STOPs kvstore).
    await until(() => /^\(talker\) netping: mac /m.test(b.out()), 60_000).catch(() =>
      assert.fail(`the conversation did not start\n${why()}`),
    );
    const done = /^\(talker\) netping: kv put 60 get 60 verified 60 errors 0$/m;
    const r = await runProcess(process.execPath, [XL_BIN, "-H", a.url, "migrate", "kv2", "mig-b"], 60_000);
    assert.equal(r.status, 0, `xl migrate: ${r.stderr.toString()}\n${why()}`);
    // Its devices came with it, served on host b by a privileged driver domain of its own.
    const ll = await runProcess(process.execPath, [XL_BIN, "-H", b.url, "list", "-l", "kv2-dd"], 30_000);
    assert.equal(ll.status, 0, `xl list -l kv2-dd on b: ${ll.stderr.toString()}\n${why()}`);
    assert.equal((JSON.parse(ll.stdout.toString()) as Array<{ privileged: boolean }>)[0]?.privileged, true);
    await until(() => done.test(b.out()), 90_000).catch(() => assert.fail(`the conversation broke\n${why()}`));
    // kvstore ends on host b: the conversation went on with it there (its STOP came last).
    await until(() => /^\(kv2\) kvstore: stopped after \d+ requests, 60 keys$/m.test(b.out()), 30_000).catch(() =>
      assert.fail(`kvstore did not finish on host b\n${why()}`),
    );
    assert.doesNotMatch(a.out(), /^\(kv2\) kvstore: stopped/m, "not on host a");
  });

  it("a counting guest goes back and forth while blkstress and a conversation run on: no count, write or reply lost", async () => {
    const a = await host("all-a");
    const b = await host("all-b", a.url);
    await until(() => /linked/.test(a.out()) && /linked/.test(b.out()), 30_000);
    const migrate = async (from: { url: string }, dom: string, to: string) => {
      const r = await runProcess(process.execPath, [XL_BIN, "-H", from.url, "migrate", dom, to], 60_000);
      assert.equal(r.status, 0, `xl migrate ${dom} ${to}: ${r.stderr.toString()}`);
    };
    writeFileSync(join(dir, "kv3.img"), new Uint8Array(256 * 1024));
    writeFileSync(join(dir, "blk3.img"), new Uint8Array(1 << 20));
    await create(
      a.url,
      "cnt",
      `name = "cnt"\nkernel = "${guestImagePath("spin")}"\nmemory = 4\ncmdline = "name=cnt report=20000 total=0"\n`,
    );
    await create(
      a.url,
      "kv3",
      'name = "kv3"\nkernel = "kvstore.elf"\nmemory = 4\ncmdline = "stop=1"\n' +
        'disk = [ "kv3.img,raw,xvda,rw" ]\nvif = [ "mac=00:16:3e:00:0e:01" ]\n',
    );
    await create(
      a.url,
      "blk3",
      'name = "blk3"\nkernel = "blkstress.elf"\nmemory = 4\ncmdline = "rounds=60 blocks=4 pause=50"\ndisk = [ "blk3.img,raw,xvda,rw" ]\n',
    );
    await until(() => /^\(kv3\) kvstore: disk/m.test(a.out()), 60_000);
    await create(
      b.url,
      "talk3",
      'name = "talk3"\nkernel = "netping.elf"\nmemory = 4\n' +
        'cmdline = "mode=kv peer=00:16:3e:00:0e:01 keys=60 stop=1 timeout=200 tries=100"\nvif = [ "mac=00:16:3e:00:0f:01" ]\n',
    );
    const both = () => `--- a\n${a.out()}\n--- b\n${b.out()}`;
    await migrate(a, "cnt", "all-b");
    await migrate(a, "blk3", "all-b");
    await migrate(b, "cnt", "all-a");
    await migrate(a, "kv3", "all-b");
    await until(() => /^\(talk3\) netping: kv put 60 get 60 verified 60 errors 0$/m.test(b.out()), 90_000).catch(() =>
      assert.fail(`the conversation broke\n${both()}`),
    );
    await until(() => /^\(blk3\) blkstress: done 60 rounds, 0 errors$/m.test(b.out()), 90_000).catch(() =>
      assert.fail(`blkstress did not finish\n${both()}`),
    );
    const writes = [...both().matchAll(/^\(blk3\) blkstress: round (\d+) wrote 4 verified 4 errors 0$/gm)].map((m) =>
      Number(m[1]),
    );
    assert.deepEqual(
      writes.sort((x, y) => x - y),
      Array.from({ length: 60 }, (_, i) => i),
      "every round once, verified",
    );
    const counts = [...both().matchAll(/^\(cnt\) spin cnt progress (\d+)$/gm)].map((m) => Number(m[1]));
    const sorted = [...counts].sort((x, y) => x - y);
    assert.ok(sorted.length >= 3, both());
    assert.deepEqual(
      sorted,
      Array.from({ length: sorted.length }, (_, i) => (i + 1) * 20000),
      "no count lost or repeated",
    );
  });
});
