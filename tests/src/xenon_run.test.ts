import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";

test("xenon run hello.elf prints through the console hypercall and powers off", async () => {
  const r = await runXenon(["run", guestImagePath("hello")]);
  assert.equal(r.stderr.toString(), "");
  assert.match(r.stdout.toString(), /^\(hello\) Hello from Xenon guest, vCPU 0$/m);
  assert.match(r.stdout.toString(), /^\(hello\) device tree at 0x[0-9a-f]+: magic 0xd00dfeed \(ok\)$/m);
  assert.equal(r.status, 0);
});

test("xenon run runs several domains under the core, each with its own console and device tree", async () => {
  const hello = guestImagePath("hello");
  const r = await runXenon(["run", "--pcpus", "2", hello, `${hello},name=second`, `${hello},name=third,memory=8`]);
  assert.equal(r.status, 0, r.stderr.toString());
  const out = r.stdout.toString();
  for (const name of ["hello", "second", "third"])
    assert.match(out, new RegExp(`^\\(${name}\\) Hello from Xenon guest`, "m"));
});

test("xenon run refuses a file that is not an RV32 ELF, with a message and no crash", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xenon-"));
  const bad = join(dir, "bad.elf");
  writeFileSync(bad, Buffer.from("\x7fELF garbage that is not an executable"));
  for (const args of [
    ["run", bad],
    ["run", "--linux-abi", bad],
  ]) {
    const r = await runXenon(args);
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /^xenon: .*bad\.elf: |^xenon: bad: /);
  }
  const missing = await runXenon(["run", join(dir, "nope.elf")]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr.toString(), /cannot read .*ENOENT/);
});

test("xenon with a bad command line explains itself", async () => {
  const r = await runXenon(["frobnicate"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /unknown command 'frobnicate'/);
  const noFile = await runXenon(["run"]);
  assert.equal(noFile.status, 2);
  // Unknown options and missing values: a usage error naming them (status 2), no stack trace.
  for (const [args, says] of [
    [["run", "--bogus"], /^xenon: run: Unknown option '--bogus'$/m],
    [["boot", "--bogus", "x.dtb"], /^xenon: boot: Unknown option '--bogus'$/m],
    [["boot", "--timeout"], /^xenon: boot: Option '--timeout <value>' argument missing$/m],
  ] as const) {
    const bad = await runXenon(args);
    assert.equal(bad.status, 2, `${args.join(" ")}: ${bad.stderr}`);
    assert.match(bad.stderr.toString(), says);
    assert.match(bad.stderr.toString(), /^usage:$/m);
    assert.doesNotMatch(bad.stderr.toString(), /^\s+at /m, "no stack trace");
  }
  for (const args of [["help"], ["run", "--help"], ["boot", "-h"]]) {
    const help = await runXenon(args);
    assert.equal(help.status, 0);
    assert.match(help.stdout.toString(), /^usage:$/m);
  }
});
