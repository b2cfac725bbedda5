/**
 * `pnpm bench migrate [--json] [--runs N] [--mib N] [--rate N]`: live migration of a 64 MiB guest
 * (dirtier.elf writing `rate` pages per ms over a `mib` MiB buffer) between two hosts in one
 * process: total time, downtime (source pause -> destination unpause; median of N), bytes sent
 * against the guest's size, live rounds. Anchor, in the same run: stop-and-copy of the same guest
 * (pause, send everything, resume on the destination), whose downtime pre-copy exists to beat.
 * Goal (issue 7): downtime <= 20 ms.
 */
import { guestImagePath } from "@xenon/guests";
import { buildSystem, localMigrationTarget, type MigrateStats, migrateDomain } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";
import { emptyHost } from "../helpers/migration_host.js";

const cli = benchCli();
const runs = cli.num("--runs", 3);
const mib = cli.num("--mib", 56);
const rate = cli.num("--rate", 20);
const GUEST_MIB = 64;

async function once(live: boolean): Promise<MigrateStats> {
  const lines: string[] = [];
  const src = buildSystem({
    domains: [
      {
        path: guestImagePath("dirtier"),
        name: "dirtier",
        memoryMiB: GUEST_MIB,
        bootargs: `mib=${mib} rate=${rate} report=50 total=0`,
      },
    ],
    pcpus: 1,
    hostMemoryMiB: 256,
    console: (_n, l) => lines.push(l),
  });
  const dst = emptyHost(256);
  try {
    src.machine.start();
    const end = Date.now() + 60_000;
    while (!lines.some((l) => l.includes("progress"))) {
      if (Date.now() > end) throw new Error(`dirtier did not start: ${lines.join(" | ")}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const after: string[] = [];
    let partial = "";
    const link = localMigrationTarget(dst, {
      console: (b) => {
        const parts = (partial + Buffer.from(b).toString("latin1")).split("\n");
        partial = parts.pop() ?? "";
        after.push(...parts);
      },
    });
    const stats = await migrateDomain(src.machine, src.domids[0]!, link.target, live ? {} : { live: false });
    const until = Date.now() + 30_000;
    while (!after.some((l) => l.includes("progress"))) {
      if (Date.now() > until) throw new Error("no progress on the destination");
      await new Promise((r) => setTimeout(r, 5));
    }
    const bad = [...lines, ...after].find((l) => l.includes("BAD"));
    if (bad !== undefined) throw new Error(`memory check failed: ${bad}`);
    return stats;
  } finally {
    await src.machine.close();
    await dst.close();
  }
}

const liveRuns: MigrateStats[] = [];
const stopRuns: MigrateStats[] = [];
for (let i = 0; i < runs; i++) {
  const l = await once(true);
  liveRuns.push(l);
  cli.log(
    `live #${i + 1}: total ${l.totalMs.toFixed(0)} ms, downtime ${l.downtimeMs.toFixed(1)} ms, ${(l.bytes / 2 ** 20).toFixed(1)} MiB sent for ${((l.guestPages * 4096) / 2 ** 20).toFixed(1)} MiB of RAM, rounds ${l.rounds} (dirty ${l.dirtyPerRound.join(", ")})`,
  );
  const s = await once(false);
  stopRuns.push(s);
  cli.log(
    `stop-and-copy #${i + 1}: downtime ${s.downtimeMs.toFixed(1)} ms, ${(s.bytes / 2 ** 20).toFixed(1)} MiB sent`,
  );
}
const down = median(liveRuns.map((r) => r.downtimeMs));
const stopDown = median(stopRuns.map((r) => r.downtimeMs));
const result = {
  guestMiB: GUEST_MIB,
  dirtyMiB: mib,
  ratePagesPerMs: rate,
  runs,
  liveTotalMsMedian: median(liveRuns.map((r) => r.totalMs)),
  liveDowntimeMsMedian: down,
  liveBytesSentMedian: median(liveRuns.map((r) => r.bytes)),
  guestRamBytes: liveRuns[0]!.guestPages * 4096,
  sentOverRam: median(liveRuns.map((r) => r.bytes / (r.guestPages * 4096))),
  stopAndCopyDowntimeMsMedian: stopDown,
  downtimeRatio: down / stopDown,
};
if (cli.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else
  cli.log(
    `migrate ${GUEST_MIB} MiB guest, ${rate} pages/ms over ${mib} MiB: live downtime median ${down.toFixed(1)} ms vs stop-and-copy ${stopDown.toFixed(1)} ms (ratio ${(down / stopDown).toFixed(3)}); total ${result.liveTotalMsMedian.toFixed(0)} ms; sent ${result.sentOverRam.toFixed(2)}x the guest's RAM`,
  );
