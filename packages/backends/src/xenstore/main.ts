/**
 * `node packages/backends/dist/xenstore/main.js --socket PATH`: runs xenstored on a Unix
 * socket until SIGINT/SIGTERM.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { startXenstoredServer } from "./server.js";

export async function runXenstored(args: string[]): Promise<number> {
  let socket: string | undefined;
  try {
    ({
      values: { socket },
    } = parseArgs({ args, options: { socket: { type: "string" } }, strict: true }));
  } catch (e) {
    process.stderr.write(`xenstored: ${(e as Error).message}\nusage: xenstored --socket PATH\n`);
    return 2;
  }
  if (socket === undefined) {
    process.stderr.write("usage: xenstored --socket PATH\n");
    return 2;
  }
  let server: Awaited<ReturnType<typeof startXenstoredServer>>;
  try {
    server = await startXenstoredServer(socket, { log: (line) => process.stderr.write(`${line}\n`) });
  } catch (e) {
    process.stderr.write(`xenstored: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`xenstored listening on ${socket}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await server.close();
  return 0;
}

// Run only when executed directly, not when imported (the toolstack imports runXenstored).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runXenstored(process.argv.slice(2));
}
