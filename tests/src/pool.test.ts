import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { guestImagePath } from "@xenon/guests";
import { MgmtClient, MgmtError } from "@xenon/toolstack";
import { type ProcessResult, runProcess, XENON_BIN } from "./helpers/run.js";
import { until } from "./helpers/wait.js";

/**
 * A pool of `xenon host` processes on loopback, driven by real `xl` processes: three hosts join
 * (a fourth with the wrong secret is refused, logged on both sides); `xl list` on any member shows
 * every host's domains; a counting guest migrates back and forth and through save/restore with no
 * count lost or repeated; a link cut mid-migration and a destination killed mid-migration leave it
 * counting on the source; the killed host is dropped and the others run on.
 */
const XL_BIN = fileURLToPath(new URL("../../packages/toolstack/bin/xl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "xenon-pool-"));
const secretFile = join(dir, "secret");
writeFileSync(secretFile, "a pool secret of enough bytes\n");
const badSecretFile = join(dir, "bad");
writeFileSync(badSecretFile, "some other secret, not the pool's\n");

interface Host {
  readonly name: string;
  readonly proc: ChildProcess;
  url: string;
  out: string;
  err: string;
}

const hosts: Host[] = [];

function startHost(name: string, extra: readonly string[] = []): Host {
  const proc = spawn(
    process.execPath,
    [
      XENON_BIN,
      "host",
      "--pcpus",
      "1",
      "--memory",
      "96",
      "--console",
      "--name",
      name,
      "--heartbeat-ms",
      "250",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const h: Host = { name, proc, url: "", out: "", err: "" };
  proc.stdout!.on("data", (b: Buffer) => {
    h.out += b.toString();
    h.url ||= /XENON_HOST=(\S+)\n/.exec(h.out)?.[1] ?? "";
  });
  proc.stderr!.on("data", (b: Buffer) => {
    h.err += b.toString();
  });
  hosts.push(h);
  return h;
}

async function member(name: string, join?: Host): Promise<Host> {
  const h = startHost(name, ["--pool-secret-file", secretFile, ...(join ? ["--join", join.url] : [])]);
  await until(() => h.url !== "" || h.proc.exitCode !== null, 30_000);
  assert.notEqual(h.url, "", `${name} did not start: ${h.err}`);
  return h;
}

after(async () => {
  for (const h of hosts) if (h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill("SIGKILL");
});

function xl(h: Host, args: readonly string[]): Promise<ProcessResult> {
  return runProcess(process.execPath, [XL_BIN, "-H", h.url, ...args], 30_000);
}

async function ok(h: Host, args: readonly string[]): Promise<string> {
  const r = await xl(h, args);
  assert.equal(r.status, 0, `xl ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString() + r.stderr.toString();
}

/** The hosts `xl list` shows the domain `name` on, from the pool-wide list. */
async function whereIs(h: Host, name: string): Promise<string[]> {
  const out = await ok(h, ["list"]);
  const found: string[] = [];
  let cur = "";
  for (const line of out.split("\n")) {
    const m = /^Host (\S+) /.exec(line);
    if (m !== null) cur = m[1]!;
    else if (line.startsWith(`${name} `)) found.push(cur);
  }
  return found;
}

/** Every count the guest printed on any host, in order of value. */
function counts(): number[] {
  const all: number[] = [];
  for (const h of hosts) for (const m of h.out.matchAll(/^\(cnt\) spin cnt progress (\d+)$/gm)) all.push(Number(m[1]));
  return all.sort((a, b) => a - b);
}

function countsOn(h: Host): number {
  return [...h.out.matchAll(/^\(cnt\) spin cnt progress (\d+)$/gm)].length;
}

const REPORT = 20_000;

function assertNoLostOrRepeated(): void {
  const c = counts();
  assert.ok(c.length > 0);
  assert.deepEqual(
    c,
    Array.from({ length: c.length }, (_, i) => (i + 1) * REPORT),
    "every count once, none missing",
  );
}

describe("a pool of xenon host processes", { timeout: 120_000 }, () => {
  let a: Host;
  let b: Host;
  let c: Host;

  it("three hosts join; a host with the wrong secret is refused and both sides log it", async () => {
    a = await member("a");
    b = await member("b", a);
    c = await member("c", b);
    // c joined through b and learnt a from it.
    await until(() => /host c \(.*\) linked/.test(a.err) && /linked to host a/.test(c.err));
    const list = await ok(c, ["pool-list"]);
    assert.match(list, /^c \*/m);
    assert.match(list, /^a /m);
    assert.match(list, /^b /m);
    const bad = startHost("d", ["--pool-secret-file", badSecretFile, "--join", a.url]);
    const status = await new Promise<number | null>((r) => bad.proc.once("exit", (code) => r(code)));
    assert.equal(status, 1);
    assert.match(bad.err, /cannot link to ws:.*: refused by the host: authentication failed/);
    assert.match(a.err, /refused a link from 127\.0\.0\.1:\d+: host 'd' failed to prove the pool secret/);
    assert.doesNotMatch(await ok(a, ["pool-list"]), /^d /m);
  });

  it("xl list on any member shows every host's domains; a counting guest migrates back and forth", async () => {
    const cfg = join(dir, "cnt.cfg");
    writeFileSync(
      cfg,
      `name = "cnt"\nkernel = "${guestImagePath("spin")}"\nmemory = 4\ncmdline = "name=cnt report=${REPORT} total=0"\n`,
    );
    await ok(a, ["create", "-q", cfg]);
    assert.deepEqual(await whereIs(c, "cnt"), ["a"], "c lists a's domain");
    await until(() => countsOn(a) >= 2, 30_000);
    const m1 = await ok(a, ["migrate", "cnt", "b"]);
    assert.match(m1, /migration: round 0: \d+ pages sent, \d+ dirty, [\d.]+ MB at [\d.]+ MB\/s/);
    assert.match(m1, /migration: cnt is running on b as domain \d+: .* downtime [\d.]+ ms/);
    assert.deepEqual(await whereIs(a, "cnt"), ["b"]);
    await until(() => countsOn(b) >= 2, 30_000);
    await ok(b, ["migrate", "cnt", a.url]); // by URL
    await until(() => countsOn(a) >= countsOn(b) + 4, 30_000);
    await ok(c, ["-H", a.url, "migrate", "cnt", "c"]);
    const onC = countsOn(c);
    await until(() => countsOn(c) >= onC + 2, 30_000);
    assert.deepEqual(await whereIs(b, "cnt"), ["c"]);
    assertNoLostOrRepeated();
    // xl save on c, xl restore on a: the count goes on from where it stopped.
    const file = join(dir, "cnt.save");
    await ok(c, ["save", "cnt", file]);
    assert.deepEqual(await whereIs(a, "cnt"), []);
    await ok(a, ["restore", file]);
    const onA = countsOn(a);
    await until(() => countsOn(a) >= onA + 2, 30_000);
    assertNoLostOrRepeated();
  });

  it("a link cut mid-migration leaves the guest counting on the source", async () => {
    const cl = await MgmtClient.connect(a.url);
    try {
      await assert.rejects(
        cl.request("domain.migrate", { dom: "cnt", host: "b", testCutAfterBytes: 1_000_000 }),
        (e: unknown) => e instanceof MgmtError && /cut/.test(e.message),
      );
    } finally {
      cl.close();
    }
    assert.match(a.err, /migration of cnt to b failed, it runs on here/);
    await until(() => /migration of cnt from a abandoned: the link went down/.test(b.err), 10_000);
    const n = countsOn(a);
    await until(() => countsOn(a) >= n + 2, 30_000);
    assert.deepEqual(await whereIs(a, "cnt"), ["a"]);
    assertNoLostOrRepeated();
    // a re-links to b by itself.
    await until(() => (a.err.match(/linked to host b/g) ?? []).length >= 1, 15_000);
  });

  it("the destination killed mid-migration: the guest counts on; the dead host is dropped, the others run", async () => {
    const cl = await MgmtClient.connect(a.url);
    try {
      const mig = cl.request("domain.migrate", { dom: "cnt", host: "c", testBatchDelayMs: 3000 });
      await until(() => /receiving domain cnt from a/.test(c.err), 10_000);
      c.proc.kill("SIGKILL");
      await assert.rejects(mig, MgmtError);
    } finally {
      cl.close();
    }
    await until(() => /link to c \(.*\) lost/.test(a.err) && /link to c \(.*\) lost/.test(b.err), 10_000);
    const n = countsOn(a);
    await until(() => countsOn(a) >= n + 2, 30_000);
    assertNoLostOrRepeated();
    const list = await ok(b, ["list"]);
    assert.match(list, /^Host b .*\*$/m);
    assert.match(list, /^Host a /m);
    assert.doesNotMatch(list, /^Host c /m);
    assert.deepEqual(await whereIs(b, "cnt"), ["a"]);
    // And the two left can still migrate between them.
    await ok(a, ["migrate", "cnt", "b"]);
    const m = countsOn(b);
    await until(() => countsOn(b) >= m + 2, 30_000);
    assertNoLostOrRepeated();
  });
});
