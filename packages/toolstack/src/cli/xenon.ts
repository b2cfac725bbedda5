import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runLinuxUser } from "../run/linux_abi.js";
import { runNativeImage } from "../run/native.js";

/**
 * `xenon` — the host-side command: `run` for now (host and boot arrive with the core).
 * Output from the guest is collected and written with process.stdout/stderr.write so that large
 * outputs are not lost when the process ends; the exit status is set, not forced.
 */
const USAGE = `usage:
  xenon run --linux-abi FILE.elf [ARG...]   run a static RV32 Linux user program (write/exit syscalls)
  xenon run FILE.elf                         run a guest image built against the Xenon guest runtime`;

function fail(message: string, code = 2): never {
  process.stderr.write(`xenon: ${message}\n`);
  process.exit(code);
}

function readImage(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    return fail(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 1);
  }
}

function cmdRun(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    options: { "linux-abi": { type: "boolean", default: false }, stats: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  const file = positionals[0];
  if (file === undefined) fail(`run: no image given\n${USAGE}`);
  const elf = readImage(file);
  const t0 = performance.now();
  try {
    if (values["linux-abi"]) {
      const r = runLinuxUser(elf, {
        argv: [file, ...positionals.slice(1)],
        write: (fd, bytes) => (fd === 1 ? process.stdout : process.stderr).write(bytes),
      });
      if (r.fault) process.stderr.write(`xenon: guest killed: ${r.fault}\n`);
      stats(values.stats, r.instructions, t0);
      process.exitCode = r.status;
    } else {
      if (positionals.length > 1) fail("run: several images need the hypervisor core (not in this build yet)");
      const r = runNativeImage(elf, { console: (bytes) => process.stdout.write(bytes) });
      if (r.fault) process.stderr.write(`xenon: domain crashed: ${r.fault}\n`);
      else if (r.shutdown !== "poweroff") process.stderr.write(`xenon: domain shut down: ${r.shutdown}\n`);
      stats(values.stats, r.instructions, t0);
      process.exitCode = r.status;
    }
  } catch (e) {
    fail(`${file}: ${(e as Error).message}`, 1);
  }
}

function stats(on: boolean, instructions: number, t0: number): void {
  if (!on) return;
  const ms = performance.now() - t0;
  process.stderr.write(
    `xenon: ${instructions} instructions in ${ms.toFixed(1)} ms (${(instructions / ms / 1000).toFixed(1)} MIPS)\n`,
  );
}

export function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run":
      cmdRun(rest);
      return;
    case undefined:
    case "-h":
    case "--help":
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command '${cmd}'\n${USAGE}`);
  }
}
