import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  DriverDomain,
  type DriverDomainMode,
  type DriverDomainXenstore,
  splitPayload,
  virtioBackendPath,
  virtioFrontendPath,
  XS_TYPES,
} from "@xenon/backends";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  type Domain,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
  Hypervisor,
  p2mPoolPagesFor,
} from "@xenon/hypervisor";
import { XenstoreLink } from "@xenon/toolstack";

/**
 * Driver domains on a host that runs XenStore: the toolstack writes each device's backend and
 * frontend nodes (libxl's layout and permissions) before the kernel starts; the kernel checks
 * them through its own connection, bound to its domid by the XenStore domain, writes state 4 once
 * its IOREQ servers are up and 6 when it stops; the toolstack then removes the nodes. Both modes.
 */
describe("driver domains with XenStore", () => {
  let hv: Hypervisor;
  let link: XenstoreLink;
  const logs: string[] = [];

  before(async () => {
    const memory = new MachineMemory({ bytes: 64 << 20 });
    hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
    link = await XenstoreLink.start(hv, { log: (l) => logs.push(l) });
  });
  after(async () => {
    await link.close();
  });

  /** A node's value, or the error name. */
  const read = async (path: string): Promise<string> => {
    const r = await link.xs.request(XS_TYPES.READ, `${path}\0`);
    return r.error ?? Buffer.from(r.payload).toString("latin1");
  };
  const perms = async (path: string): Promise<string[]> =>
    splitPayload((await link.xs.ok(XS_TYPES.GET_PERMS, `${path}\0`)).payload).strings;

  async function guest(name: string): Promise<Domain> {
    const d = hv.domains.create({ name, maxVcpus: 1, maxPages: 16, p2mPoolPages: p2mPoolPagesFor(16) });
    if (typeof d === "number") throw new Error(`create ${d}`);
    await link.introduce(d, name);
    return d;
  }

  const rng = (g: number, i: number) => ({
    guest: g,
    base: GUEST_VIRTIO_MMIO_BASE + i * GUEST_VIRTIO_MMIO_SIZE,
    size: GUEST_VIRTIO_MMIO_SIZE,
    guestIrqPort: 20 + i,
    device: { kind: "rng" } as const,
  });

  for (const mode of ["thread", "process"] as DriverDomainMode[])
    it(`${mode} mode: libxl's nodes and permissions, state 4 from the domain's own connection, EACCES elsewhere, 6 then removal`, async () => {
      const g = await guest(`xsg-${mode}`);
      const closing: string[] = [];
      // The toolstack's hook, watched: what the backend state was when the nodes were removed.
      const hook: DriverDomainXenstore = {
        attach: (a) => link.driverDomains.attach(a),
        detach: async (domid, devices) => {
          for (const d of devices) closing.push(await read(`${virtioBackendPath(domid, d)}/state`));
          await link.driverDomains.detach(domid, devices);
        },
      };
      const dd = await DriverDomain.launch(hv, {
        mode,
        devices: [rng(g.domid, 0), rng(g.domid, 1)],
        xenstore: hook,
        faultHooks: true,
        log: (l) => logs.push(l),
      });
      const B = dd.domid;
      const F = g.domid;
      try {
        for (const devid of [0, 1]) {
          const be = virtioBackendPath(B, { guest: F, devid });
          const fe = virtioFrontendPath({ guest: F, devid });
          const base = GUEST_VIRTIO_MMIO_BASE + devid * GUEST_VIRTIO_MMIO_SIZE;
          const want: Record<string, string> = {
            frontend: fe,
            "frontend-id": String(F),
            online: "1",
            state: "4",
            irq: String(20 + devid),
            base: String(base),
            type: "virtio,device4",
            transport: "mmio",
            grant_usage: "1",
          };
          for (const [k, v] of Object.entries(want)) assert.equal(await read(`${be}/${k}`), v, `${be}/${k}`);
          for (const [k, v] of Object.entries({ backend: be, "backend-id": String(B), state: "1", base: String(base) }))
            assert.equal(await read(`${fe}/${k}`), v, `${fe}/${k}`);
          assert.deepEqual(await perms(be), [`n${B}`, `r${F}`]);
          assert.deepEqual(await perms(fe), [`n${F}`, `r${B}`]);
        }
        assert.equal(await read(`/local/domain/${B}/name`), dd.name);
        // The kernel's connection is its domid's: its own backend nodes yes, the guest's no.
        const be0 = virtioBackendPath(B, { guest: F, devid: 0 });
        assert.equal(await dd.xenstoreWrite(`${be0}/feature-test`, "1"), "OK");
        assert.equal(await read(`${be0}/feature-test`), "1");
        assert.equal(await dd.xenstoreWrite(`${virtioFrontendPath({ guest: F, devid: 0 })}/state`, "4"), "EACCES");
        assert.equal(await dd.xenstoreWrite(`/local/domain/${F}/name`, "owned"), "EACCES");
        assert.equal(await dd.xenstoreWrite("/tool/x", "1"), "EACCES");
        assert.equal(await read(`/local/domain/${F}/name`), `xsg-${mode}`);
      } finally {
        await dd.close();
      }
      assert.deepEqual(closing, ["6", "6"], "the backend wrote Closed before the toolstack removed the nodes");
      assert.equal(await read(virtioBackendPath(B, { guest: F, devid: 0 })), "ENOENT");
      assert.equal(await read(virtioFrontendPath({ guest: F, devid: 0 })), "ENOENT");
      hv.domains.destroy(F);
    });

  for (const mode of ["thread", "process"] as DriverDomainMode[])
    it(`${mode} mode: a connection the XenStore domain drops fails the kernel's requests at once; stop still ends`, async () => {
      const g = await guest(`xsg-drop-${mode}`);
      const dd = await DriverDomain.launch(hv, {
        mode,
        devices: [rng(g.domid, 0)],
        xenstore: link.driverDomains,
        faultHooks: true,
        log: (l) => logs.push(l),
      });
      try {
        await link.xs.ok(XS_TYPES.RELEASE, `${dd.domid}\0`);
        const t0 = performance.now();
        assert.match(await dd.xenstoreWrite(`/local/domain/${dd.domid}/x`, "1"), /xenstore connection: .*closed/);
        assert.ok(performance.now() - t0 < 1500, "no wait for a reply that cannot come");
      } finally {
        const t0 = performance.now();
        await dd.close();
        assert.ok(performance.now() - t0 < 1900, "the kernel stopped without waiting out its launcher");
        hv.domains.destroy(g.domid);
      }
    });

  it("a restarted driver domain finds its nodes written again and reports Connected again", async () => {
    const g = await guest("xsg-restart");
    let attaches = 0;
    const hook: DriverDomainXenstore = {
      attach: (a) => {
        attaches++;
        return link.driverDomains.attach(a);
      },
      detach: (domid, devices) => link.driverDomains.detach(domid, devices),
    };
    const dd = await DriverDomain.launch(hv, {
      devices: [rng(g.domid, 0)],
      xenstore: hook,
      restart: true,
      faultHooks: true,
      log: (l) => logs.push(l),
    });
    try {
      const state = `${virtioBackendPath(dd.domid, { guest: g.domid, devid: 0 })}/state`;
      assert.equal(await read(state), "4");
      dd.inject("exit");
      const t0 = Date.now();
      while (dd.restarts < 1) {
        assert.ok(Date.now() - t0 < 30_000, `no restart: ${logs.join("\n")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await dd.settled();
      assert.equal(attaches, 2);
      assert.equal(await read(state), "4");
      assert.deepEqual(await perms(`/local/domain/${dd.domid}/backend/virtio/${g.domid}/0`), [
        `n${dd.domid}`,
        `r${g.domid}`,
      ]);
    } finally {
      await dd.close();
      hv.domains.destroy(g.domid);
    }
  });

  it("nodes that disagree with the boot record: the domain refuses to start and says which node", async () => {
    const g = await guest("xsg-mismatch");
    const hook: DriverDomainXenstore = {
      attach: async (a) => {
        const port = await link.driverDomains.attach(a);
        await link.xs.ok(XS_TYPES.WRITE, `${virtioBackendPath(a.domid, a.devices[0]!)}/base\0${1234}`);
        return port;
      },
      detach: (domid, devices) => link.driverDomains.detach(domid, devices),
    };
    await assert.rejects(
      DriverDomain.launch(hv, { devices: [rng(g.domid, 0)], xenstore: hook, log: (l) => logs.push(l) }),
      /backend\/virtio\/\d+\/0\/base is "1234", this domain serves d\d+ virtio device 0 with "\d+"/,
    );
    hv.domains.destroy(g.domid);
  });
});
