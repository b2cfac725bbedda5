// Debian's xenstore-utils (Xen 4.17 libxenstore, unchanged) against our xenstored over a Unix
// socket named by XENSTORED_PATH. The server runs in this process, so every tool is spawned
// asynchronously (a synchronous spawn would block the daemon's event loop).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startXenstoredServer, type XenstoredServer } from "@xenon/backends";
import { XENON_BIN } from "./helpers/run.js";

const TOOLS = ["xenstore-read", "xenstore-write", "xenstore-ls", "xenstore-list", "xenstore-exists", "xenstore-rm"];
const MORE = ["xenstore-chmod", "xenstore-watch"];

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
const missingTools = [...TOOLS, ...MORE].filter((t) => !onPath(t));
const skip = missingTools.length
  ? `Debian xenstore-utils not installed (missing ${missingTools.join(", ")}); apt-get install xenstore-utils`
  : false;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let dir = "";
let server: XenstoredServer | undefined;
let socketPath = "";

function tool(cmd: string, args: readonly string[], socket = socketPath): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, XENSTORED_PATH: socket },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 10_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await tool(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "xenon-xs-"));
  socketPath = join(dir, "socket");
  server = await startXenstoredServer(socketPath);
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("xenstore-write / -read / -exists / -rm round trip", { skip }, async () => {
  await ok("xenstore-write", "/a/b", "hello");
  assert.equal(await ok("xenstore-read", "/a/b"), "hello\n");
  assert.equal((await tool("xenstore-exists", ["/a/b"])).status, 0);
  assert.equal((await tool("xenstore-exists", ["/a/nope"])).status, 1);
  await ok("xenstore-write", "/a/gone", "x", "/a/gone2", "y");
  await ok("xenstore-rm", "/a/gone");
  assert.equal((await tool("xenstore-exists", ["/a/gone"])).status, 1);
  const missing = await tool("xenstore-read", ["/a/gone"]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /couldn't read path \/a\/gone/);
  // Relative paths from the socket (dom0) live under /local/domain/0.
  await ok("xenstore-write", "name", "Domain-0");
  assert.equal(await ok("xenstore-read", "/local/domain/0/name"), "Domain-0\n");
});

test("xenstore-ls prints the subtree in its indented format; -f prints full paths", { skip }, async () => {
  await ok("xenstore-write", "/ls/b", "hello", "/ls/c", "x y", "/ls/d/e", "3");
  assert.equal(await ok("xenstore-ls", "/ls"), 'b = "hello"\nc = "x y"\nd = ""\n e = "3"\n');
  assert.equal(await ok("xenstore-ls", "-f", "/ls"), '/ls/b = "hello"\n/ls/c = "x y"\n/ls/d = ""\n/ls/d/e = "3"\n');
  const root = await ok("xenstore-ls", "/");
  assert.match(root, /^local = ""\n domain = ""\n/);
  assert.match(root, /^tool = ""\n xenstored = ""$/m);
});

test("xenstore-list lists children, including directories too big for one DIRECTORY reply", { skip }, async () => {
  await ok("xenstore-write", "/lst/one", "1", "/lst/two", "2");
  assert.equal(await ok("xenstore-list", "/lst"), "one\ntwo\n");
  // 150 names of 40 bytes (> 4096 bytes): libxenstore gets E2BIG and falls back to DIRECTORY_PART.
  const names = Array.from({ length: 150 }, (_, i) => `a-long-child-name-for-paging-${String(i).padStart(10, "0")}`);
  const args = names.flatMap((n) => [`/big/${n}`, ""]);
  await ok("xenstore-write", ...args);
  assert.equal(await ok("xenstore-list", "/big"), `${names.join("\n")}\n`);
});

test("xenstore-chmod sets permissions that xenstore-ls -p shows", { skip }, async () => {
  await ok("xenstore-write", "/perm/b", "v");
  await ok("xenstore-chmod", "/perm/b", "n1", "r0");
  const out = await ok("xenstore-ls", "-p", "/perm");
  assert.match(out, /^b = "v" [ .]*\(n1,r0\)$/m);
  // The socket is privileged dom0: reading a node owned by domain 1 still works.
  assert.equal(await ok("xenstore-read", "/perm/b"), "v\n");
  await ok("xenstore-chmod", "/perm/b", "b0");
  assert.match(await ok("xenstore-ls", "-p", "/perm"), /\(b0\)$/m);
});

test("xenstore-watch -n 2 sees the registration event and a write from another client", { skip }, async () => {
  await ok("xenstore-write", "/w", "");
  const child = spawn("xenstore-watch", ["-n", "2", "/w"], {
    env: { ...process.env, XENSTORED_PATH: socketPath },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 10_000,
  });
  let out = "";
  const firstLine = new Promise<void>((resolve) => {
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  await firstLine;
  await ok("xenstore-write", "/w/x", "1");
  assert.equal(await exited, 0);
  assert.equal(out, "/w\n/w/x\n");
});

test("concurrent xenstore-write processes all succeed (their transactions retry on EAGAIN)", { skip }, async () => {
  const runs = await Promise.all(
    Array.from({ length: 12 }, (_, i) => tool("xenstore-write", [`/conc/k${i}`, String(i), "/conc/shared", String(i)])),
  );
  for (const r of runs) assert.equal(r.status, 0, r.stderr);
  assert.equal((await ok("xenstore-list", "/conc")).split("\n").filter(Boolean).length, 13);
});

const MAIN = fileURLToPath(new URL("../../packages/backends/dist/xenstore/main.js", import.meta.url));

test("main.js --socket runs until SIGTERM, serves the tools and removes its socket", { skip }, async () => {
  const sock = join(dir, "main.sock");
  const child = spawn(process.execPath, [MAIN, "--socket", sock], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve();
    });
    child.on("close", (code) => reject(new Error(`exited early with ${code}`)));
  });
  assert.equal(out, `xenstored listening on ${sock}\n`);
  const w = await tool("xenstore-write", ["/m", "v"], sock);
  assert.equal(w.status, 0, w.stderr);
  assert.equal((await tool("xenstore-read", ["/m"], sock)).stdout, "v\n");
  const code = new Promise<number | null>((resolve) => child.on("close", resolve));
  child.kill("SIGTERM");
  assert.equal(await code, 0);
  assert.equal(existsSync(sock), false);
});

test("xenon xenstored --socket serves the tools until SIGINT", { skip }, async () => {
  const sock = join(dir, "xenon.sock");
  const child = spawn(process.execPath, [XENON_BIN, "xenstored", "--socket", sock], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve();
    });
    child.on("close", (code) => reject(new Error(`exited early with ${code}`)));
  });
  assert.equal(out, `xenstored listening on ${sock}\n`);
  assert.equal((await tool("xenstore-write", ["/x", "y"], sock)).status, 0);
  assert.equal((await tool("xenstore-read", ["/x"], sock)).stdout, "y\n");
  const code = new Promise<number | null>((resolve) => child.on("close", resolve));
  child.kill("SIGINT");
  assert.equal(await code, 0);
  assert.equal(existsSync(sock), false);
});

test("a stale socket file is replaced; a live one is refused", { skip }, async () => {
  await assert.rejects(startXenstoredServer(socketPath), /already listening/);
  // A daemon killed with SIGKILL leaves its socket file behind.
  const sock = join(dir, "stale.sock");
  const child = spawn(process.execPath, [MAIN, "--socket", sock], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  const dead = new Promise((resolve) => child.on("close", resolve));
  child.kill("SIGKILL");
  await dead;
  assert.equal(existsSync(sock), true);
  const s = await startXenstoredServer(sock);
  assert.equal((await tool("xenstore-exists", ["/"], sock)).status, 0);
  await s.close();
  assert.equal(existsSync(sock), false);
});
