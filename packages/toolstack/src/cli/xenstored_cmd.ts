import { parseArgs } from "node:util";
import { startXenstoredServer } from "@xenon/backends";

/**
 * `xenon xenstored --socket PATH`: the XenStore daemon on a Unix socket (what XENSTORED_PATH
 * names for Debian's xenstore-* tools), until SIGINT/SIGTERM. Returns the exit status.
 */
export async function cmdXenstored(args: string[]): Promise<number> {
  let socket: string | undefined;
  try {
    socket = parseArgs({ args, options: { socket: { type: "string" } }, strict: true }).values.socket;
  } catch (e) {
    process.stderr.write(`xenon: xenstored: ${(e as Error).message}\n`);
    return 2;
  }
  if (socket === undefined) {
    process.stderr.write("xenon: xenstored: give --socket PATH\n");
    return 2;
  }
  let server: Awaited<ReturnType<typeof startXenstoredServer>>;
  try {
    server = await startXenstoredServer(socket, { log: (line) => process.stderr.write(`${line}\n`) });
  } catch (e) {
    process.stderr.write(`xenon: xenstored: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`xenstored listening on ${socket}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await server.close();
  return 0;
}
