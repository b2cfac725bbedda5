/**
 * xenstored on a Unix socket, the way Debian's xenstore-* tools reach it (XENSTORED_PATH).
 * Every socket client is dom0 and privileged, as in Xen.
 */
import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { SocketTransport } from "./domain_conn.js";
import { Xenstored, type XenstoredOptions } from "./xenstored.js";

export interface XenstoredServer {
  readonly path: string;
  readonly daemon: Xenstored;
  /** Stops listening, drops every client and removes the socket file. */
  close(): Promise<void>;
}

/** True when something accepts connections on `path`. */
function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Removes a socket file left by a daemon that died; refuses to steal a live one or to delete
 * anything that is not a socket.
 */
async function clearStale(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  if (await alive(path)) throw new Error(`${path}: a xenstored is already listening`);
  unlinkSync(path);
}

export async function startXenstoredServer(
  socketPath: string,
  options: XenstoredOptions & { daemon?: Xenstored } = {},
): Promise<XenstoredServer> {
  await clearStale(socketPath);
  const daemon = options.daemon ?? new Xenstored(options);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    new SocketTransport(daemon, socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    daemon,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        // net.Server unlinks its Unix socket file on close.
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
