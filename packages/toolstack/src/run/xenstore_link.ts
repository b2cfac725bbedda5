/**
 * The toolstack's side of XenStore (what libxl does at domain creation and destruction): as the
 * privileged dom0 client it writes /local/domain/<domid>/{name,domid} and introduces the domain
 * (XS_INTRODUCE, firing @introduceDomain), and releases it (XS_RELEASE, @releaseDomain) when the
 * domain is gone. The daemon runs in this process and is reachable by Debian's xenstore-* tools
 * on its Unix socket. The guest ring is not connected yet: domains are introduced with no ring.
 */
import { InProcessConnection, startXenstoredServer, type XenstoredServer, XS_TYPES } from "@xenon/backends";

const enc = new TextEncoder();

export class XenstoreLink {
  private constructor(
    readonly server: XenstoredServer,
    private readonly dom0: InProcessConnection,
  ) {}

  static async start(socketPath: string): Promise<XenstoreLink> {
    const server = await startXenstoredServer(socketPath);
    return new XenstoreLink(server, new InProcessConnection(server.daemon, { domid: 0, privileged: true }));
  }

  get path(): string {
    return this.server.path;
  }

  introduce(domid: number, name: string): void {
    const home = `/local/domain/${domid}`;
    this.request(XS_TYPES.INTRODUCE, `${domid}\0${0}\0${0}\0`);
    this.request(XS_TYPES.WRITE, `${home}/name\0${name}`);
    this.request(XS_TYPES.WRITE, `${home}/domid\0${domid}`);
  }

  release(domid: number): void {
    this.request(XS_TYPES.RELEASE, `${domid}\0`);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private request(type: number, payload: string): void {
    const r = this.dom0.request(type, enc.encode(payload));
    if (r.error !== undefined) throw new Error(`xenstore: ${type} ${payload.split("\0")[0]}: ${r.error}`);
  }
}
