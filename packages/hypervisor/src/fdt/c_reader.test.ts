/**
 * Cross-check of the guests' C FDT reader (packages/guests/c/runtime/fdt.c) against this
 * module: the C code is built for the host with AddressSanitizer/UBSan around a small harness
 * (fixtures/fdt_harness.c), fed valid and corrupted blobs, and must (a) print exactly the tree
 * our reader sees for every blob we accept and (b) never read out of bounds or crash on any
 * blob. Skipped when no host C compiler or the guest sources are absent.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FdtError } from "./errors.js";
import { readFdt } from "./reader.js";
import { dtc, dtcVersion, fixtureNames, fixturePath, prng } from "./test_support.js";
import { Fdt } from "./tree.js";
import { bytes, decodeReg, str, u32, u64 } from "./values.js";
import { writeFdt } from "./writer.js";

const RUNTIME = fileURLToPath(new URL("../../../guests/c/runtime/", import.meta.url));
const CC = process.env.HOST_CC ?? "cc";

function toolchainProblem(): string | undefined {
  if (!existsSync(join(RUNTIME, "fdt.c"))) return `guest runtime sources not found at ${RUNTIME}`;
  const r = spawnSync(CC, ["--version"], { stdio: "ignore" });
  return r.error || r.status !== 0 ? `no host C compiler '${CC}' (set HOST_CC)` : undefined;
}

const problem = toolchainProblem();

/** Builds the harness; with sanitizers when the toolchain has them. */
function buildHarness(dir: string): { exe: string; sanitized: boolean } {
  const exe = join(dir, "fdt_harness");
  const base = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-iquote", join(RUNTIME, "include")];
  const srcs = [fixturePath("fdt_harness.c"), join(RUNTIME, "fdt.c"), "-o", exe];
  const san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];
  let r = spawnSync(CC, [...base, ...san, ...srcs], { encoding: "utf8" });
  if (r.status === 0) return { exe, sanitized: true };
  r = spawnSync(CC, [...base, ...srcs], { encoding: "utf8" });
  assert.equal(r.status, 0, `compiling the C reader failed:\n${r.stderr}`);
  return { exe, sanitized: false };
}

/** The harness's dump format, produced from our reader's tree (see fdt_harness.c). */
function expectedDump(fdt: Fdt): string {
  const lines = [`boot ${(fdt.bootCpuidPhys ?? 0).toString(16)}`];
  for (const r of fdt.memoryReservations) lines.push(`rsv ${r.address.toString(16)} ${r.size.toString(16)}`);
  for (const { node, parent, path } of fdt.walk()) {
    lines.push(`node ${path}`);
    for (const [name, value] of node.properties) lines.push(`prop ${name} ${Buffer.from(value).toString("hex")}`);
    const reg = node.get("reg");
    if (parent && reg) {
      try {
        for (const e of decodeReg(reg, parent.addressCells(), parent.sizeCells())) {
          // The C reader returns u64s and refuses wider values at the entry that needs them.
          if (e.address >= 1n << 64n || e.size >= 1n << 64n) throw new FdtError("FDT_ERR_BADVALUE", "wide");
          lines.push(`reg ${e.address.toString(16)} ${e.size.toString(16)}`);
        }
      } catch (e) {
        if (!(e instanceof FdtError)) throw e;
        lines.push("regerr");
      }
    }
  }
  lines.push("check 0");
  return lines.join("\n");
}

function records(blobs: Uint8Array[]): Buffer {
  return Buffer.concat(
    blobs.flatMap((b) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, Buffer.from(b)];
    }),
  );
}

/** Runs the harness over all blobs; returns one dump per blob. */
function runHarness(exe: string, dir: string, blobs: Uint8Array[]): string[] {
  const input = join(dir, "records.bin");
  writeFileSync(input, records(blobs));
  const r = spawnSync(exe, [input], {
    maxBuffer: 256 << 20,
    env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS: "print_stacktrace=1" },
  });
  assert.equal(r.stderr.toString(), "", "the C reader reported a sanitizer error or crashed");
  assert.equal(r.status, 0);
  const out = r.stdout.toString("latin1").split(/^== \d+\n/m);
  out.shift();
  assert.equal(out.length, blobs.length);
  return out.map((s) => s.trimEnd());
}

function validBlobs(): Uint8Array[] {
  const fdt = new Fdt(
    undefined,
    [
      { address: 0x80000000n, size: 0x1000n },
      { address: 0xffff_ffff_0000_0000n, size: 0x1_0000_0000n },
    ],
    3,
  );
  fdt.root.set("#address-cells", u32(2)).set("#size-cells", u32(2)).set("model", str("x"));
  const cpus = fdt.root.subnode("cpus").set("#address-cells", u32(1)).set("#size-cells", u32(0));
  cpus.subnode("cpu@0").set("reg", u32(0)).set("phandle", u32(1));
  cpus.subnode("cpu@1").set("reg", u32(1)).set("linux,phandle", u32(2));
  cpus.subnode("cpu").set("reg", u32(7));
  fdt.root.subnode("memory@80000000").set("reg", u32(0, 0x80000000, 1, 0));
  const wide = fdt.root.subnode("wide").set("#address-cells", u32(3)).set("#size-cells", u32(1));
  wide.subnode("ok@0").set("reg", u32(0, 1, 2, 3));
  wide.subnode("too-wide@0").set("reg", u32(0, 0, 1, 1, 1, 2, 3, 4));
  fdt.root.subnode("badreg").set("reg", bytes([1, 2, 3]));
  fdt.root.subnode("n").set("u64", u64(5n)).set("e", new Uint8Array(0));
  const out = [writeFdt(fdt), writeFdt(new Fdt())];
  if (dtcVersion()) {
    for (const f of fixtureNames(".dts")) {
      out.push(dtc(["-I", "dts", "-O", "dtb", "-o", "-", fixturePath(f)]));
      out.push(dtc(["-I", "dts", "-O", "dtb", "-V", "16", "-o", "-", fixturePath(f)]));
    }
  }
  return out;
}

/** Valid blobs, every prefix of the first one, and seeded random corruptions of all of them. */
function corpus(): Uint8Array[] {
  const valid = validBlobs();
  const out = [...valid];
  for (let n = 0; n < valid[0]!.length; n++) out.push(valid[0]!.slice(0, n));
  const rand = prng(77);
  const interesting = [0, 1, 2, 3, 4, 9, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];
  for (let i = 0; i < 6000; i++) {
    const b = valid[i % valid.length]!.slice();
    const dv = new DataView(b.buffer);
    for (let e = 1 + Math.floor(rand() * 3); e > 0; e--) {
      const at = Math.floor(rand() * (b.length - 3)) & ~3;
      const r = rand();
      if (r < 0.4) b[at + Math.floor(rand() * 4)] = Math.floor(rand() * 256);
      else if (r < 0.7) dv.setUint32(at, interesting[Math.floor(rand() * interesting.length)]!);
      else dv.setUint32(Math.floor(rand() * 10) * 4, Math.floor(rand() * (b.length + 64)));
    }
    out.push(b);
  }
  return out;
}

describe("guest C FDT reader (host build)", { skip: problem ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), "xenon-fdt-c-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("agrees with the TypeScript reader and stays in bounds on hostile blobs", (t) => {
    const { exe, sanitized } = buildHarness(dir);
    if (!sanitized) t.diagnostic("sanitizers unavailable: built without ASan/UBSan");
    const blobs = corpus();
    const dumps = runHarness(exe, dir, blobs);
    let accepted = 0;
    let cRejected = 0;
    blobs.forEach((blob, i) => {
      let fdt: Fdt | undefined;
      try {
        fdt = readFdt(blob);
      } catch (e) {
        if (!(e instanceof FdtError)) throw e;
      }
      const dump = dumps[i]!;
      if (fdt) {
        accepted++;
        assert.equal(dump, expectedDump(fdt), `blob ${i}: C and TS readers disagree`);
      } else if (/^open |^check -|^walk /m.test(dump)) {
        cRejected++;
      }
    });
    t.diagnostic(`${blobs.length} blobs: ${accepted} valid and identical; C also rejected ${cRejected} of the rest`);
    assert.ok(accepted >= validBlobs().length);
  });
});
