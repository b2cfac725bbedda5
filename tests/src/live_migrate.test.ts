import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { buildSystem, localMigrationTarget, migrateDomain } from "@xenon/toolstack";
import { emptyHost, lineSink } from "./helpers/migration_host.js";
import { until } from "./helpers/wait.js";

/**
 * Live migration between two hosts in one process (each its own machine memory, hypervisor and
 * pCPU workers): a spin guest migrates while it runs and finishes on the destination with the
 * checksum of a run that never moved; a refused stream leaves it running on the source.
 */
const TOTAL = 120_000;
const REPORT = 10_000;
const spin = {
  path: guestImagePath("spin"),
  name: "mover",
  memoryMiB: 2,
  bootargs: `name=mover report=${REPORT} total=${TOTAL}`,
};

describe("live migration between two machines in one process", () => {
  it("the guest keeps counting on the destination and ends with the unmoved run's checksum", async () => {
    const refLines: string[] = [];
    const ref = buildSystem({ domains: [spin], pcpus: 1, console: (_n, l) => refLines.push(l) });
    await ref.machine.run();
    await ref.machine.close();
    const refDone = refLines.find((l) => l.includes("done"));
    assert.ok(refDone);

    const srcLines: string[] = [];
    const src = buildSystem({ domains: [spin], pcpus: 1, console: (_n, l) => srcLines.push(l) });
    const dst = emptyHost();
    try {
      src.machine.start();
      const domid = src.domids[0]!;
      await until(() => srcLines.some((l) => l.includes("progress")));
      const dstLines: string[] = [];
      const link = localMigrationTarget(dst, { console: lineSink(dstLines) });
      const rounds: number[] = [];
      const stats = await migrateDomain(src.machine, domid, link.target, {
        progress: (p) => rounds.push(p.dirty),
      });
      assert.equal(src.hv.domains.getLive(domid), undefined, "gone from the source");
      const moved = link.result();
      assert.ok(moved !== null && dst.hv.domains.getLive(moved.domid) === moved.domain);
      assert.ok(stats.guestPages >= 512 && stats.pagesSent >= stats.guestPages, JSON.stringify(stats));
      assert.ok(stats.downtimeMs < 2000, `downtime ${stats.downtimeMs} ms`);
      assert.ok(rounds.length >= 1);
      await until(() => dstLines.some((l) => l.includes("done")));
      const srcCounts = srcLines.filter((l) => l.includes("progress")).map((l) => Number(l.split(" ").pop()));
      const dstCounts = dstLines.filter((l) => l.includes("progress")).map((l) => Number(l.split(" ").pop()));
      assert.ok(!srcLines.some((l) => l.includes("done")), "it did not finish on the source");
      assert.deepEqual(
        [...srcCounts, ...dstCounts],
        Array.from({ length: TOTAL / REPORT }, (_, i) => (i + 1) * REPORT),
        "no count lost or repeated",
      );
      assert.equal(
        dstLines.find((l) => l.includes("done")),
        refDone,
        "same checksum as the run that never moved",
      );
    } finally {
      await src.machine.close();
      await dst.close();
    }
  });

  it("pages written during the rounds all arrive: a dirtying guest's memory check holds on the destination", async () => {
    const srcLines: string[] = [];
    const src = buildSystem({
      domains: [
        { path: guestImagePath("dirtier"), name: "dirtier", memoryMiB: 8, bootargs: "mib=4 rate=40 report=20 total=0" },
      ],
      pcpus: 1,
      console: (_n, l) => srcLines.push(l),
    });
    const dst = emptyHost();
    try {
      src.machine.start();
      await until(() => srcLines.some((l) => l.includes("progress")));
      const dstLines: string[] = [];
      const link = localMigrationTarget(dst, { console: lineSink(dstLines) });
      const stats = await migrateDomain(src.machine, src.domids[0]!, link.target);
      assert.ok(stats.rounds >= 1, `it dirtied pages during round 0: ${JSON.stringify(stats)}`);
      await until(() => dstLines.filter((l) => l.includes("progress")).length >= 3);
      assert.ok(
        [...srcLines, ...dstLines].every((l) => !l.includes("BAD")),
        [...srcLines, ...dstLines].join("\n"),
      );
      const last = (ls: string[]) =>
        Number(
          ls
            .filter((l) => l.includes("progress"))
            .at(-1)!
            .split(" ")[2],
        );
      assert.ok(last(dstLines) > last(srcLines), "writes went on from where they were");
    } finally {
      await src.machine.close();
      await dst.close();
    }
  });

  it("a destination that refuses the stream leaves the guest running on the source", async () => {
    const srcLines: string[] = [];
    const src = buildSystem({
      domains: [{ ...spin, bootargs: `name=mover report=${REPORT} total=0` }],
      pcpus: 1,
      console: (_n, l) => srcLines.push(l),
    });
    const dst = emptyHost();
    try {
      src.machine.start();
      const domid = src.domids[0]!;
      await until(() => srcLines.some((l) => l.includes("progress")));
      const link = localMigrationTarget(dst, {});
      let sent = 0;
      // A link that corrupts the stream after 100 KiB: the destination refuses it.
      const target = {
        ...link.target,
        send: (c: Uint8Array) => {
          const b = c.slice();
          if (sent > 100_000 && b.length > 8) b[4] ^= 0xff;
          sent += b.length;
          link.target.send(b);
        },
      };
      await assert.rejects(migrateDomain(src.machine, domid, target), /MigrationStreamError|exceeds|must be/);
      const d = src.hv.domains.getLive(domid);
      assert.ok(d !== undefined && !d.paused, "still there, unpaused");
      assert.equal(dst.hv.domains.count, 0, "nothing left on the destination");
      const n = srcLines.length;
      await until(() => srcLines.length > n + 1);
    } finally {
      await src.machine.close();
      await dst.close();
    }
  });
});
