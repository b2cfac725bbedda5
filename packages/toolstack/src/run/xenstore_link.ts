/**
 * The toolstack's side of XenStore, as libxl and init-xenstore-domain do it:
 * - creates the XenStore domain (XEN_DOMCTL_CDF_xs_domain, no RAM, no vCPU that runs guest
 *   code), serves its hypercall port and starts it in its own worker thread; routes
 *   VIRQ_DOM_EXC to it, so it notices dead domains itself;
 * - for each guest, has the builder set up the XenStore page, gref 1 and the unbound port
 *   (setupXenstoreRing), then as the privileged dom0 client writes
 *   /local/domain/<domid>/{name,domid} and introduces the domain (XS_INTRODUCE domid gfn port);
 * - when a domain is gone, xenstored releases it on VIRQ_DOM_EXC (@releaseDomain); the toolstack
 *   only removes what it wrote, as libxl does;
 * - for driver domains (`driverDomains`), libxl's virtio device nodes and a connection per kernel.
 * Debian's xenstore-* tools reach the daemon on its Unix socket when one is asked for.
 */
import { MessageChannel } from "node:worker_threads";
import { type DriverDomainXenstore, XenstoreDomainHandle, XS_TYPES } from "@xenon/backends";
import {
  type Domain,
  DomainBuildError,
  type Hypervisor,
  p2mPoolPagesFor,
  servePort,
  setupXenstoreRing,
  Virq,
} from "@xenon/hypervisor";
import { virtioXenstore } from "../libxl/virtio_xenstore.js";

export interface XenstoreLinkOptions {
  /** Serve Debian's tools on this Unix socket. */
  readonly socketPath?: string;
  /** Daemon log lines (dropped connections, bad rings). */
  readonly log?: (line: string) => void;
  /** The XenStore domain's domid (default: the next free one). */
  readonly domid?: number;
}

export class XenstoreLink {
  /**
   * Driver domains' XenStore (DriverDomainOptions.xenstore): their devices' backend and frontend
   * nodes, written before each kernel starts and removed after it stops, and each kernel's own
   * connection bound to its domid.
   */
  readonly driverDomains: DriverDomainXenstore;

  private constructor(
    private readonly hv: Hypervisor,
    readonly xs: XenstoreDomainHandle,
    readonly socketPath: string | undefined,
    private readonly log: ((line: string) => void) | undefined,
  ) {
    this.driverDomains = virtioXenstore(xs, log);
  }

  /** Creates the XenStore domain in `hv` and starts it. */
  static async start(hv: Hypervisor, opts: XenstoreLinkOptions = {}): Promise<XenstoreLink> {
    const d = hv.domains.create({
      ...(opts.domid !== undefined ? { domid: opts.domid } : {}),
      name: "Xenstore",
      maxVcpus: 1,
      maxPages: 0,
      p2mPoolPages: p2mPoolPagesFor(0),
      flags: { xenstore: true },
    });
    if (typeof d === "number") throw new Error(`cannot create the XenStore domain (${d})`);
    hv.setGlobalVirqHandler(Virq.DOM_EXC, d.domid);
    const { port1, port2 } = new MessageChannel();
    servePort(hv, d.domid, port1);
    let xs: XenstoreDomainHandle;
    try {
      xs = await XenstoreDomainHandle.launch({
        hypercallPort: port2,
        ...(opts.socketPath !== undefined ? { socketPath: opts.socketPath } : {}),
        ...(opts.log !== undefined ? { log: opts.log } : {}),
      });
    } catch (e) {
      port1.close();
      hv.domains.destroy(d.domid);
      throw e;
    }
    return new XenstoreLink(hv, xs, opts.socketPath, opts.log);
  }

  get domid(): number {
    return this.xs.domid;
  }

  /**
   * Gives `d` its XenStore page and port and introduces it. Call before the domain runs; resolves
   * once xenstored has mapped the ring.
   */
  async introduce(d: Domain, name: string): Promise<void> {
    let gfn = 0;
    let evtchn = 0;
    try {
      ({ gfn, evtchn } = setupXenstoreRing(this.hv, d, this.xs.domid));
    } catch (e) {
      // No page for it (static memory with no frame to spare, a direct-mapped domain): it is
      // still introduced, without a ring; its STORE_PFN stays 0, which its client reports.
      if (!(e instanceof DomainBuildError)) throw e;
      this.log?.(`xenstore: ${d.name}: no XenStore ring: ${e.message}`);
    }
    const home = `/local/domain/${d.domid}`;
    // INTRODUCE makes the home (dom0's, readable by the domain); then libxl's basic nodes, and
    // the domain's own writable `data` directory.
    await this.xs.ok(XS_TYPES.INTRODUCE, `${d.domid}\0${gfn}\0${evtchn}\0`);
    await this.xs.ok(XS_TYPES.WRITE, `${home}/name\0${name}`);
    await this.xs.ok(XS_TYPES.WRITE, `${home}/domid\0${d.domid}`);
    await this.xs.ok(XS_TYPES.MKDIR, `${home}/data\0`);
    await this.xs.ok(XS_TYPES.SET_PERMS, `${home}/data\0n${d.domid}\0`);
    await this.xs.settled();
  }

  close(): Promise<void> {
    return this.xs.close();
  }
}
