/**
 * libxl's part of virtio devices in XenStore, for driver domains (DriverDomainXenstore): before a
 * driver domain's kernel starts, make its home and write each device's backend and frontend
 * directories (backend owned by the driver domain and readable by the guest, frontend owned by
 * the guest and readable by the driver domain, state 1), then hand the XenStore domain a
 * connection bound to the driver domain's domid; when the kernel stopped serving devices (it
 * wrote state 6), remove their directories, as libxl does on device removal.
 */
import {
  type DriverDomainXenstore,
  type DriverDomainXenstoreAttach,
  type DriverDomainXenstoreDevice,
  virtioBackendNodes,
  virtioBackendPath,
  virtioFrontendNodes,
  virtioFrontendPath,
  XenbusState,
  type XenstoreDomainHandle,
  XS_TYPES,
} from "@xenon/backends";

export function virtioXenstore(xs: XenstoreDomainHandle, log: (line: string) => void = () => {}): DriverDomainXenstore {
  const exists = async (path: string) => (await xs.request(XS_TYPES.READ, `${path}\0`)).error === undefined;
  /** A domain's home as libxl makes it: dom0's, readable by the domain. */
  const home = async (domid: number) => {
    const path = `/local/domain/${domid}`;
    if (await exists(path)) return;
    await xs.ok(XS_TYPES.MKDIR, `${path}\0`);
    await xs.ok(XS_TYPES.SET_PERMS, `${path}\0n0\0r${domid}\0`);
  };
  /** RM that does not mind a missing parent (the domain's home already went with it). */
  const rm = (path: string) => xs.request(XS_TYPES.RM, `${path}\0`);
  const dir = async (path: string, owner: number, reader: number, nodes: Record<string, string>) => {
    await rm(path);
    await xs.ok(XS_TYPES.MKDIR, `${path}\0`);
    await xs.ok(XS_TYPES.SET_PERMS, `${path}\0n${owner}\0r${reader}\0`);
    for (const [k, v] of Object.entries(nodes)) await xs.ok(XS_TYPES.WRITE, `${path}/${k}\0${v}`);
  };
  return {
    async attach(dd: DriverDomainXenstoreAttach) {
      // Still introduced: a last incarnation (a restart, or a restore reusing the domid); its
      // connection, home and nodes go first (xenstored would do it on VIRQ_DOM_EXC, at a time of
      // its choosing).
      if ((await xs.ok(XS_TYPES.IS_DOMAIN_INTRODUCED, `${dd.domid}\0`)).payload[0] === 0x54)
        await xs.ok(XS_TYPES.RELEASE, `${dd.domid}\0`);
      // Introduced without a ring (gfn 0, port 0): xenstored knows it and releases it when it dies.
      await xs.ok(XS_TYPES.INTRODUCE, `${dd.domid}\0${0}\0${0}\0`);
      await xs.ok(XS_TYPES.WRITE, `/local/domain/${dd.domid}/name\0${dd.name}`);
      await xs.ok(XS_TYPES.WRITE, `/local/domain/${dd.domid}/domid\0${dd.domid}`);
      for (const d of dd.devices) {
        await home(d.guest);
        await dir(virtioBackendPath(dd.domid, d), dd.domid, d.guest, virtioBackendNodes(d));
        await dir(virtioFrontendPath(d), d.guest, dd.domid, virtioFrontendNodes(dd.domid, d));
      }
      return xs.connectDomain(dd.domid, dd.privileged);
    },
    async detach(domid: number, devices: readonly DriverDomainXenstoreDevice[]) {
      for (const d of devices) {
        const be = virtioBackendPath(domid, d);
        const r = await xs.request(XS_TYPES.READ, `${be}/state\0`);
        const state = r.error === undefined ? Buffer.from(r.payload).toString("latin1") : r.error;
        if (state !== String(XenbusState.Closed))
          log(
            `xenstore: d${domid} left d${d.guest} virtio device ${d.devid} in state ${state}, not ${XenbusState.Closed} (Closed)`,
          );
        await rm(be);
        await rm(virtioFrontendPath(d));
      }
    },
  };
}
