import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { DriverDomain, DriverDomainMode } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { p2mPoolPagesFor } from "@xenon/hypervisor";
import {
  buildSystem,
  driverDomainSource,
  driverDomainTarget,
  launchBackends,
  localMigrationTarget,
  migrateDomain,
} from "@xenon/toolstack";
import { emptyHost, lineSink } from "./helpers/migration_host.js";
import { until } from "./helpers/wait.js";

/**
 * A guest doing virtio-blk I/O migrates between two hosts in one process: its device's state
 * (registers, ring positions) travels in an EMULATOR_CONTEXT record, a driver domain on the
 * destination takes it over, and the guest's I/O goes on without a lost or repeated round and
 * with every block verified. A destination that cannot start the backend refuses the domain and
 * the guest finishes on the source.
 */
const ROUNDS = 8;

async function blkGuest(lines: string[], mode: DriverDomainMode = "thread") {
  const disk = join(mkdtempSync(join(tmpdir(), "xenon-vmig-")), "disk.img");
  writeFileSync(disk, new Uint8Array(1 << 20));
  const sys = buildSystem({
    domains: [{ path: guestImagePath("blkstress"), name: "blk", memoryMiB: 4, bootargs: `rounds=${ROUNDS} blocks=8` }],
    pcpus: 1,
    console: (_n, l) => lines.push(l),
    virtio: [{ domain: 1, device: { kind: "blk", path: disk } }],
    driverDomainMode: mode,
  });
  const backends = await launchBackends(sys.hv, sys.virtio, (n, l) => lines.push(`${n}: ${l}`));
  return { sys, backends };
}

const rounds = (lines: readonly string[]) =>
  lines.flatMap((l) => {
    const m = /^blkstress: round (\d+) wrote 8 verified 8 errors 0$/.exec(l);
    return m === null ? [] : [Number(m[1])];
  });

describe("virtio devices migrate with their guest", () => {
  for (const mode of ["thread", "process"] as const)
    it(`blkstress goes on on the destination with its device as it left it: no round lost or repeated, no error (${mode} mode)`, async () => {
      const srcLines: string[] = [];
      const { sys: src, backends } = await blkGuest(srcLines, mode);
      const dst = emptyHost();
      const started: DriverDomain[] = [];
      try {
        src.machine.start();
        const domid = src.domids[0]!;
        await until(() => rounds(srcLines).length >= 2, 60_000);
        const dstLines: string[] = [];
        const log: string[] = [];
        const link = localMigrationTarget(dst, {
          console: lineSink(dstLines),
          deviceModels: driverDomainTarget(dst.hv, {
            mode,
            log: (l) => log.push(l),
            started: (dd) => started.push(dd),
          }),
        });
        await migrateDomain(src.machine, domid, link.target, { deviceModels: driverDomainSource(() => backends) });
        assert.equal(src.hv.domains.getLive(domid), undefined, "gone from the source");
        assert.equal(started.length, 1, "one driver domain took the devices over");
        assert.equal(started[0]!.domid, backends[0]!.domid, "with the domid the guest's tree and grants name");
        assert.deepEqual(backends[0]!.devicesOf(domid), [], "the source's driver domain let go of the guest");
        const why = () => `${srcLines.join("\n")}\n--- destination\n${dstLines.join("\n")}\n${log.join("\n")}`;
        await until(() => dstLines.some((l) => l.startsWith("blkstress: done")), 60_000).catch((e: Error) => {
          throw new Error(`${e.message}: ${why()}`);
        });
        assert.ok(dstLines.includes(`blkstress: done ${ROUNDS} rounds, 0 errors`), why());
        assert.deepEqual(
          [...rounds(srcLines), ...rounds(dstLines)],
          Array.from({ length: ROUNDS }, (_, i) => i),
          `every round once, verified: ${why()}`,
        );
        assert.ok(rounds(dstLines).length >= 1, "some rounds ran on the destination");
      } finally {
        for (const dd of started) await dd.close();
        for (const dd of backends) await dd.close();
        await src.machine.close();
        await dst.close();
      }
    });

  it("a destination that cannot start the backend refuses the domain; the guest finishes on the source", async () => {
    const srcLines: string[] = [];
    const { sys: src, backends } = await blkGuest(srcLines);
    const dst = emptyHost();
    try {
      // The backend's domid is taken on the destination.
      const squatter = dst.hv.domains.create({
        domid: backends[0]!.domid,
        name: "squatter",
        maxVcpus: 1,
        maxPages: 0,
        p2mPoolPages: p2mPoolPagesFor(0),
      });
      assert.notEqual(typeof squatter, "number");
      src.machine.start();
      const domid = src.domids[0]!;
      await until(() => rounds(srcLines).length >= 1, 60_000);
      const link = localMigrationTarget(dst, { deviceModels: driverDomainTarget(dst.hv) });
      await assert.rejects(
        migrateDomain(src.machine, domid, link.target, { deviceModels: driverDomainSource(() => backends) }),
        /backend domid \d+ .* is in use on this host/,
      );
      assert.equal(dst.hv.domains.list().filter((d) => d.name === "blk").length, 0, "nothing left on the destination");
      await until(() => srcLines.some((l) => l.startsWith("blkstress: done")), 60_000);
      assert.ok(srcLines.includes(`blkstress: done ${ROUNDS} rounds, 0 errors`), srcLines.join("\n"));
      assert.deepEqual(
        rounds(srcLines),
        Array.from({ length: ROUNDS }, (_, i) => i),
      );
    } finally {
      for (const dd of backends) await dd.close();
      await src.machine.close();
      await dst.close();
    }
  });
});
