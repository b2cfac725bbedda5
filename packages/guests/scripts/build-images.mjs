#!/usr/bin/env node
// Builds the RV32 guest images of @xenon/guests with clang + ld.lld (no make, no npm deps).
//
//   node scripts/build-images.mjs [--force] [--verbose]
//
// Incremental: each object records its command line (<obj>.cmd) and its header dependencies
// (<obj>.d, from clang -MMD). An object is rebuilt when it is missing, its command changed, or
// any dependency is not older than it; an image is relinked when any object or its linker
// script is not older than it, or its link command changed. A stamp is written only after its
// step succeeded, so an interrupted or failed build is redone next time.
// Output: dist/images/<name>.elf (Xenon native images), dist/linux/<name>.<isa>.elf (Linux-ABI
// differential programs), objects under dist/obj/<flavour>-<isa>/.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const PKG = fileURLToPath(new URL("..", import.meta.url));
const SRC = join(PKG, "c");
const DIST = join(PKG, "dist");

const CC = process.env.CC ?? "clang";
const LD = process.env.LD ?? "ld.lld";

const args = new Set(process.argv.slice(2));
const FORCE = args.has("--force");
const VERBOSE = args.has("--verbose");

// --- what to build ---------------------------------------------------------------------------

// The freestanding libc both flavours link; compiled with -fno-builtin (see LIBC_FLAGS).
const LIBC = ["runtime/libc/string.c", "runtime/libc/divdi3.c", "runtime/libc/format.c", "runtime/libc/stdio.c"];
const NATIVE_RUNTIME = [
  "runtime/start.S",
  "runtime/console.c",
  "runtime/sched.c",
  "runtime/fdt.c",
  "runtime/platform.c",
  "runtime/trap.S",
  "runtime/trap.c",
  "runtime/events.c",
  "runtime/grant.c",
  "runtime/timer.c",
  "runtime/alloc.c",
  "runtime/bootargs.c",
  "runtime/xenstore.c",
  "runtime/virtio.c",
  "runtime/virtio_console.c",
  "runtime/virtio_net.c",
  ...LIBC,
];
const LINUX_RUNTIME = ["linux/crt.S", "linux/sys.c", ...LIBC];

// Keep in sync with LINUX_PROGRAMS in src/index.ts (cpubench is listed there separately).
const LINUX_PROGRAMS = ["alu", "muldiv", "loadstore", "branches", "atomics", "algo", "exitcode", "cpubench"];
const LINUX_ISAS = ["rv32ima", "rv32imac"];

const NATIVE_IMAGES = {
  hello: ["images/hello.c"],
  cpubench: ["images/cpubench.c", "bench/cpubench_core.c"],
  pingpong: ["images/pingpong.c"],
  polltest: ["images/polltest.c"],
  spin: ["images/spin.c"],
  grantshare: ["images/grantshare.c"],
  hostile: ["images/hostile.c"],
  smp: ["images/smp.c"],
  xsclient: ["images/xsclient.c"],
  shmem: ["images/shmem.c"],
  rngcat: ["images/rngcat.c"],
  blkstress: ["images/blkstress.c"],
  vconsole: ["images/vconsole.c"],
  virtioattack: ["images/virtioattack.c"],
  dirtier: ["images/dirtier.c"],
  netping: ["images/netping.c"],
  kvstore: ["images/kvstore.c"],
  dmatest: ["images/dmatest.c"],
};
const LINUX_EXTRA = { cpubench: ["bench/cpubench_core.c"] };

// Native images linked at another RAM base (the runtime is position independent in all but its
// link address): hello at 0x70000000, for direct-mapped static memory there and for guests whose
// RAM must leave 0x80000000 free (the xen-abi.md §6 example trees).
const RELINKED_IMAGES = { hellolow: { sources: ["images/hello.c"], ramBase: 0x70000000 } };

// Native images that carry another built image as data (`payload_start`..`payload_end`): the
// control domain's kernel for the domain it builds. Built after every other image.
const PAYLOAD_IMAGES = { ctl: { sources: ["images/ctl.c"], payload: "hello" } };

const FLAVOURS = {
  native: {
    includes: ["runtime/include"],
    ldflags: ["-T", join(SRC, "runtime/linker.ld")],
    linkInputs: [join(SRC, "runtime/linker.ld")],
  },
  linux: {
    includes: ["runtime/include", "linux"],
    // ld.lld's default riscv32 image base is 0x10000, a normal static user address.
    ldflags: ["-static", "-e", "_start", "--image-base=0x10000"],
    linkInputs: [],
  },
};

const CFLAGS = [
  "--target=riscv32-unknown-elf",
  "-mabi=ilp32",
  // PC-relative addressing, so nothing assumes where in the 32-bit space the image lives.
  "-mcmodel=medany",
  // lld 14 cannot do RISC-V linker relaxation and rejects R_RISCV_ALIGN; gp is therefore unused.
  "-mno-relax",
  "-O2",
  "-std=c11",
  "-ffreestanding",
  "-nostdlib",
  "-nostdlibinc",
  "-fno-builtin-printf",
  "-fno-stack-protector",
  "-fno-pic",
  "-fno-asynchronous-unwind-tables",
  "-fno-unwind-tables",
  "-ffunction-sections",
  "-fdata-sections",
  "-Wall",
  "-Wextra",
];
// Stops the compiler from turning memcpy/memset loops into calls to themselves.
const LIBC_FLAGS = ["-fno-builtin"];

function targets() {
  const list = [];
  for (const [name, srcs] of Object.entries(NATIVE_IMAGES)) {
    list.push({
      out: join(DIST, "images", `${name}.elf`),
      flavour: "native",
      isa: "rv32imac",
      sources: [...srcs, ...NATIVE_RUNTIME],
    });
  }
  for (const [name, { sources, ramBase }] of Object.entries(RELINKED_IMAGES)) {
    list.push({
      out: join(DIST, "images", `${name}.elf`),
      flavour: "native",
      isa: "rv32imac",
      sources: [...sources, ...NATIVE_RUNTIME],
      ldflags: [`--defsym=XENON_RAM_BASE=0x${ramBase.toString(16)}`],
    });
  }
  for (const name of LINUX_PROGRAMS) {
    for (const isa of LINUX_ISAS) {
      list.push({
        out: join(DIST, "linux", `${name}.${isa}.elf`),
        flavour: "linux",
        isa,
        sources: [`linux/${name}.c`, ...(LINUX_EXTRA[name] ?? []), ...LINUX_RUNTIME],
      });
    }
  }
  return list;
}

// --- helpers ---------------------------------------------------------------------------------

const rel = (p) => relative(PKG, p);
const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
};
const readText = (p) => {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
};

function fail(message) {
  console.error(`build-images: error: ${message}`);
  process.exit(1);
}

// Parses a make-style dependency file written by clang -MMD: "obj.o: a.c b.h \\\n c.h".
function parseDeps(text) {
  const body = text.replace(/\\\r?\n/g, " ");
  const colon = body.indexOf(": ");
  if (colon < 0) return undefined;
  return body
    .slice(colon + 2)
    .split(/(?<!\\)\s+/)
    .filter(Boolean)
    .map((d) => d.replace(/\\ /g, " "));
}

// True if out exists, was made by exactly `cmd`, and is strictly newer than every input.
function upToDate(out, cmd, inputs) {
  if (FORCE) return false;
  const t = mtime(out);
  if (t === undefined || readText(`${out}.cmd`) !== cmd) return false;
  for (const input of inputs) {
    const ti = mtime(input);
    if (ti === undefined || ti >= t) return false;
  }
  return true;
}

// Runs a tool, capturing its output so parallel jobs do not interleave their messages.
function run(argv) {
  if (VERBOSE) console.log(argv.join(" "));
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (b) => {
      output += b;
    });
    child.stderr.on("data", (b) => {
      output += b;
    });
    child.on("error", (err) => resolve({ code: -1, output: `${err.message}\n` }));
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

async function pool(jobs, limit) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

function checkTool(tool, pkg) {
  const r = spawnSync(tool, ["--version"], { stdio: "ignore" });
  if (r.error) fail(`'${tool}' not found (Debian package ${pkg}; see 'pnpm system-deps')`);
}

// --- build -----------------------------------------------------------------------------------

async function compile(obj) {
  const cmd = obj.argv.join(" ");
  if (upToDate(obj.out, cmd, obj.deps())) return { built: false };
  mkdirSync(dirname(obj.out), { recursive: true });
  rmSync(`${obj.out}.cmd`, { force: true });
  const r = await run(obj.argv);
  if (r.output) process.stderr.write(r.output);
  if (r.code !== 0) return { error: `compiling ${rel(obj.src)} failed (exit ${r.code})` };
  writeFileSync(`${obj.out}.cmd`, cmd);
  return { built: true };
}

async function link(target, objects) {
  const fl = FLAVOURS[target.flavour];
  const argv = [
    LD,
    ...fl.ldflags,
    ...(target.ldflags ?? []),
    "--gc-sections",
    "--discard-locals",
    "-o",
    target.out,
    ...objects.map((o) => o.out),
  ];
  const cmd = argv.join(" ");
  if (upToDate(target.out, cmd, [...objects.map((o) => o.out), ...fl.linkInputs])) return { built: false };
  mkdirSync(dirname(target.out), { recursive: true });
  rmSync(`${target.out}.cmd`, { force: true });
  const r = await run(argv);
  if (r.output) process.stderr.write(r.output);
  if (r.code !== 0) return { error: `linking ${rel(target.out)} failed (exit ${r.code})` };
  writeFileSync(`${target.out}.cmd`, cmd);
  const size = statSync(target.out).size;
  console.log(`build-images: built ${rel(target.out)} (${(size / 1024).toFixed(1)} KiB)`);
  return { built: true };
}

// Each payload image links its sources, the runtime, and an assembled .incbin of its payload.
async function buildPayloadImages(objectFor) {
  const results = [];
  for (const [name, { sources, payload }] of Object.entries(PAYLOAD_IMAGES)) {
    const elf = join(DIST, "images", `${payload}.elf`);
    const asm = join(DIST, "obj", "payload", `${payload}.S`);
    const text = [
      `/* Generated by build-images.mjs: ${payload}.elf as data. */`,
      '  .section .rodata.payload, "a"',
      "  .balign 8",
      "  .globl payload_start",
      "  .globl payload_end",
      "payload_start:",
      `  .incbin "${elf}"`,
      "payload_end:",
      "",
    ].join("\n");
    mkdirSync(dirname(asm), { recursive: true });
    if (readText(asm) !== text) writeFileSync(asm, text);
    const out = `${asm}.o`;
    const argv = [CC, ...CFLAGS, "-march=rv32imac", "-c", asm, "-o", out];
    const obj = { src: asm, out, argv, deps: () => [asm, elf] };
    const c = await compile(obj);
    if (c.error) fail(c.error);
    const target = { out: join(DIST, "images", `${name}.elf`), flavour: "native", isa: "rv32imac" };
    const objects = [...sources, ...NATIVE_RUNTIME].map((s) => objectFor("native", "rv32imac", s));
    for (const o of objects) if (!existsSync(o.src)) fail(`missing source ${rel(o.src)} (for ${rel(target.out)})`);
    const compiled = await pool(
      objects.map((o) => () => compile(o)),
      Math.max(1, availableParallelism()),
    );
    const errors = compiled.filter((r) => r.error).map((r) => r.error);
    if (errors.length) fail(errors.join("\n  "));
    const l = await link(target, [...objects, obj]);
    if (l.error) fail(l.error);
    results.push(l);
  }
  return results;
}

async function main() {
  checkTool(CC, "clang");
  checkTool(LD, "lld");

  // One object per (flavour, isa, source), shared by every image that links it.
  const objects = new Map();
  const objectFor = (flavour, isa, src) => {
    const key = `${flavour}-${isa}/${src}`;
    let obj = objects.get(key);
    if (!obj) {
      const srcPath = join(SRC, src);
      // x.S gets x.S.o so it may sit next to an x.c (trap.S and trap.c).
      const out = join(DIST, "obj", `${flavour}-${isa}`, src.replace(/\.c$/, ".o").replace(/\.S$/, ".S.o"));
      const argv = [
        CC,
        ...CFLAGS,
        `-march=${isa}`,
        ...FLAVOURS[flavour].includes.map((i) => `-I${join(SRC, i)}`),
        ...(LIBC.includes(src) ? LIBC_FLAGS : []),
        "-MMD",
        "-MF",
        `${out}.d`,
        "-c",
        srcPath,
        "-o",
        out,
      ];
      // Until clang has written a .d file, the source itself is the only known input.
      const deps = () => {
        const text = readText(`${out}.d`);
        return (text && parseDeps(text)) ?? [srcPath, `${out}.d`];
      };
      obj = { src: srcPath, out, argv, deps };
      objects.set(key, obj);
    }
    return obj;
  };

  const list = targets().map((t) => ({ ...t, objects: t.sources.map((s) => objectFor(t.flavour, t.isa, s)) }));
  for (const t of list) {
    for (const o of t.objects) if (!existsSync(o.src)) fail(`missing source ${rel(o.src)} (for ${rel(t.out)})`);
  }

  const parallel = Math.max(1, availableParallelism());
  const compiled = await pool(
    [...objects.values()].map((o) => () => compile(o)),
    parallel,
  );
  const compileErrors = compiled.filter((r) => r.error).map((r) => r.error);
  if (compileErrors.length) fail(compileErrors.join("\n  "));

  const linked = await pool(
    list.map((t) => () => link(t, t.objects)),
    parallel,
  );
  const linkErrors = linked.filter((r) => r.error).map((r) => r.error);
  if (linkErrors.length) fail(linkErrors.join("\n  "));

  const carriers = await buildPayloadImages(objectFor);
  const built = linked.filter((r) => r.built).length + carriers.filter((r) => r.built).length;
  if (built === 0) console.log(`build-images: all ${list.length + carriers.length} images up to date`);
}

await main();
