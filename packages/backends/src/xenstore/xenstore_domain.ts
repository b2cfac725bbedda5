/**
 * The XenStore domain: xenstored as a TypeScript domain that reaches the hypervisor only through
 * its hypercall port (HypercallClient). It runs the daemon, and for every introduced domain maps
 * that domain's ring page through the reserved grant entry (GNTTAB_RESERVED_XENSTORE, gref 1),
 * binds the domain's unbound XenStore port and serves the ring. Like the C daemon it binds
 * VIRQ_DOM_EXC and, when it fires, asks the hypervisor (XEN_DOMCTL_getdomaininfo, which the
 * XenStore domain may call) which introduced domains shut down or died: a shutdown fires
 * @releaseDomain, a dying or vanished domain is released (connection closed, its nodes removed,
 * @releaseDomain fired).
 *
 * Runs in the XenStore domain's worker (domain_main.ts), or in any thread for tests.
 */
import { DomInf, Errno, GNTTAB_RESERVED_XENSTORE, type HypercallClient, Virq } from "@xenon/hypervisor";
import { XenstoreRing } from "./ring.js";
import { type DomainChannelFactory, Xenstored, type XenstoredOptions } from "./xenstored.js";

interface RingRecord {
  ring: XenstoreRing | null;
  /** Our end of the domain's XenStore channel (0 until bound). */
  local: number;
  /** Grant handle of the mapped page (-1 until mapped). */
  handle: number;
  /** Settles when the ring is up or setting it up failed. */
  ready: Promise<void>;
}

/** What getdomaininfo tells us; kept structural so no hypervisor internals are imported. */
interface DomainInfoLike {
  readonly domid: number;
  readonly flags: number;
}

export class XenstoreDomain implements DomainChannelFactory {
  readonly daemon: Xenstored;
  private readonly records = new Map<number, RingRecord>();
  /** Domains whose shutdown already fired @releaseDomain. */
  private readonly shutdownSeen = new Set<number>();
  private readonly log: (line: string) => void;
  private checking: Promise<void> | null = null;
  private recheck = false;
  private stopped = false;

  constructor(
    private readonly client: HypercallClient,
    options: Omit<XenstoredOptions, "domainChannels"> = {},
  ) {
    this.log = options.log ?? (() => {});
    this.daemon = new Xenstored({ ...options, domainChannels: this });
  }

  /** Binds VIRQ_DOM_EXC. Returns the port, or a negative errno (then dead domains are noticed only by RELEASE). */
  async start(): Promise<number> {
    const port = await this.client.call<number>("evtchnBindVirq", Virq.DOM_EXC, 0);
    if (port < 0) {
      this.log(`xenstored: cannot bind VIRQ_DOM_EXC (${port}); domains are released only by XS_RELEASE`);
      return port;
    }
    this.client.bind(port, () => {
      this.checkDomains().catch((e: unknown) => this.log(`xenstored: domain check failed: ${String(e)}`));
    });
    return port;
  }

  /** Settles when every ring set up so far is connected (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.records.values()].map((r) => r.ready));
  }

  /** Ring of a domain, if it is connected (tests and statistics). */
  ring(domid: number): XenstoreRing | null {
    return this.records.get(domid)?.ring ?? null;
  }

  stop(): void {
    this.stopped = true;
    for (const domid of [...this.records.keys()]) this.release(domid);
  }

  // ---- DomainChannelFactory -------------------------------------------------------------------

  introduce(domid: number, gfn: bigint, evtchn: number): void {
    // Port 0 is never a valid channel: an introduction without a ring (tools-only, tests).
    if (evtchn === 0 || gfn === 0n || this.stopped) return;
    const rec: RingRecord = { ring: null, local: 0, handle: -1, ready: Promise.resolve() };
    this.records.set(domid, rec);
    rec.ready = this.connect(domid, evtchn, rec).catch((e: unknown) => {
      this.log(`xenstored: domain ${domid}: ring setup failed: ${String(e)}`);
    });
  }

  release(domid: number): void {
    this.shutdownSeen.delete(domid);
    const rec = this.records.get(domid);
    if (rec === undefined) return;
    this.records.delete(domid);
    this.teardown(rec);
  }

  // ---- internals -----------------------------------------------------------------------------

  private async connect(domid: number, evtchn: number, rec: RingRecord): Promise<void> {
    const m = await this.client.mapGrant(domid, GNTTAB_RESERVED_XENSTORE, false);
    if (m.status !== 0 || m.view === null) {
      this.log(`xenstored: domain ${domid}: cannot map its XenStore page (grant status ${m.status})`);
      return;
    }
    rec.handle = m.handle;
    const local = await this.client.evtchnBindInterdomain(domid, evtchn);
    if (local < 0) {
      this.log(`xenstored: domain ${domid}: cannot bind its XenStore port ${evtchn} (${local})`);
      this.teardown(rec);
      return;
    }
    rec.local = local;
    if (this.records.get(domid) !== rec) {
      // Released while we were mapping: undo.
      this.teardown(rec);
      return;
    }
    const client = this.client;
    const ring = new XenstoreRing(
      this.daemon,
      { domid, privileged: false },
      m.view,
      {
        notify: () => {
          client.evtchnSend(local).catch(() => {});
        },
        onClosed: (reason, failure) => {
          if (failure !== "released") this.log(`xenstored: domain ${domid}: ring closed: ${reason}`);
        },
      },
      (t) => this.daemon.connectDomain(domid, t),
    );
    rec.ring = ring;
    client.bind(local, () => ring.kick());
    // The guest may have written requests before we were here.
    ring.kick();
  }

  private teardown(rec: RingRecord): void {
    if (rec.ring !== null && !rec.ring.closed) rec.ring.close("domain released");
    rec.ring = null;
    const client = this.client;
    if (rec.local > 0) {
      const local = rec.local;
      client.bind(local, () => {});
      client.evtchnClose(local).catch(() => {});
      rec.local = 0;
    }
    if (rec.handle >= 0) {
      client.unmapGrant(rec.handle).catch(() => {});
      rec.handle = -1;
    }
  }

  /** One check at a time; a VIRQ during a check asks for another pass. */
  private async checkDomains(): Promise<void> {
    if (this.checking !== null) {
      this.recheck = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.recheck = false;
        for (const domid of this.daemon.introducedDomains()) await this.checkDomain(domid);
      } while (this.recheck && !this.stopped);
    })();
    try {
      await this.checking;
    } finally {
      this.checking = null;
    }
  }

  private async checkDomain(domid: number): Promise<void> {
    const asked = this.daemon.introductionOf(domid);
    const info = await this.client.call<DomainInfoLike | number>("domctlGetDomainInfo", domid);
    // Released and introduced again while we asked (a restarted domain with the same domid):
    // the answer is about the old one.
    if (this.daemon.introductionOf(domid) !== asked) return;
    // -ESRCH: no domain at or above domid, so this one is gone.
    if (typeof info === "number" && info !== -Errno.ESRCH) {
      this.log(`xenstored: getdomaininfo(${domid}) refused (${info})`);
      return;
    }
    const gone = typeof info === "number" || info.domid !== domid || (info.flags & DomInf.dying) !== 0;
    if (gone) {
      if (this.daemon.isIntroduced(domid)) this.daemon.release(domid);
      return;
    }
    if ((info.flags & DomInf.shutdown) !== 0 && !this.shutdownSeen.has(domid)) {
      this.shutdownSeen.add(domid);
      this.daemon.domainShutdown(domid);
    }
  }
}
