import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository's `xenon` command, run as a real process (what a user runs with pnpm exec). */
export const XENON_BIN = fileURLToPath(new URL("../../../packages/toolstack/bin/xenon.js", import.meta.url));

export interface ProcessResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
}

/** Runs a command to completion, capturing stdout and stderr as bytes; `input` (if any) is its stdin. */
export function runProcess(
  cmd: string,
  args: readonly string[],
  timeoutMs = 60_000,
  input?: string,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    if (input !== undefined) child.stdin?.end(input);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (status, signal) =>
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms: performance.now() - t0 }),
    );
  });
}

export function runXenon(args: readonly string[], timeoutMs?: number, input?: string): Promise<ProcessResult> {
  return runProcess(process.execPath, [XENON_BIN, ...args], timeoutMs, input);
}
