/**
 * `pnpm bench net [--json] [--frames N] [--size BYTES] [--runs N]`: guest-to-guest throughput
 * over virtio-net and the host's switch, median frames/s and MB/s.
 *  - two RV32 guests, each with a virtio-net device in its own driver domain (worker thread) on
 *    one xenbr0: netping flood sends N frames back to back, netping echo counts them and times
 *    the first to the last with its clock (frames, bytes and µs as the receiver saw them);
 *  - anchor in the same run: the same frames (count and size) from the main thread to a worker
 *    through a MessagePort pair as transferred ArrayBuffers — the crossing a frame makes twice on
 *    its way (driver domain -> switch -> driver domain), with nothing else.
 */
import { Worker } from "node:worker_threads";
import { guestImagePath } from "@xenon/guests";
import { runSystem } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";

const cli = benchCli();
const frames = cli.num("--frames", 1000);
const size = cli.num("--size", 1024);
const runs = cli.num("--runs", 3);
const log = cli.log;
/** Ethernet + protocol header in front of the payload (netping's DATA frames). */
const HEADERS = 14 + 8;

interface Rate {
  frames: number;
  bytes: number;
  us: number;
}

async function guests(): Promise<Rate & { lost: number }> {
  const image = guestImagePath("netping");
  const lines: string[] = [];
  const r = await runSystem({
    domains: [
      {
        path: image,
        name: "flood",
        memoryMiB: 4,
        bootargs: `mode=flood peer=00:16:3e:00:00:02 count=${frames} size=${size} stop=1`,
      },
      { path: image, name: "sink", memoryMiB: 4, bootargs: "mode=echo" },
    ],
    virtio: [
      { domain: 1, device: { kind: "net", mac: "00:16:3e:00:00:01" } },
      { domain: 2, device: { kind: "net", mac: "00:16:3e:00:00:02" } },
    ],
    pcpus: 2,
    console: (name, line) => lines.push(`${name}: ${line}`),
    timeoutMs: 300_000,
  });
  if (r.timedOut || r.ends.some((e) => e.reason !== 0)) throw new Error(`net guests failed:\n${lines.join("\n")}`);
  const m = lines
    .map((l) => /^sink: netping: echo answered \d+ pings, received (\d+) data frames (\d+) bytes in (\d+) us/.exec(l))
    .find((x) => x !== null);
  if (!m) throw new Error(`the sink printed no count:\n${lines.join("\n")}`);
  const got = Number(m[1]);
  return { frames: got, bytes: Number(m[2]), us: Math.max(1, Number(m[3])), lost: frames - got };
}

async function anchor(): Promise<Rate> {
  const w = new Worker(new URL("./fixtures/frame_sink_worker.js", import.meta.url), { workerData: frames });
  await new Promise((r) => w.once("online", r));
  const done = new Promise<{ frames: number; bytes: number }>((r) => w.once("message", r));
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    const b = new ArrayBuffer(size + HEADERS);
    new Uint8Array(b)[0] = i;
    w.postMessage(b, [b]);
  }
  const got = await done;
  const us = (performance.now() - t0) * 1000;
  await w.terminate();
  return { ...got, us };
}

const fps = (r: Rate) => (r.frames * 1e6) / r.us;
const mbps = (r: Rate) => r.bytes / r.us; // bytes/µs = MB/s
const g: Array<Rate & { lost: number }> = [];
const a: Rate[] = [];
for (let i = 0; i < runs; i++) {
  const x = await guests();
  const y = await anchor();
  g.push(x);
  a.push(y);
  log(
    `  run ${i + 1}: guests ${fps(x).toFixed(0)} frames/s ${mbps(x).toFixed(2)} MB/s (${x.frames}/${frames} delivered); MessagePort ${fps(y).toFixed(0)} frames/s ${mbps(y).toFixed(1)} MB/s`,
  );
}
const gf = median(g.map(fps));
const af = median(a.map(fps));
const result = {
  bench: "net",
  frames,
  frameBytes: size + HEADERS,
  runs,
  guestFramesPerSec: Math.round(gf),
  guestMBps: Number(median(g.map(mbps)).toFixed(3)),
  guestLostFrames: median(g.map((x) => x.lost)),
  anchorMessagePortFramesPerSec: Math.round(af),
  anchorMessagePortMBps: Number(median(a.map(mbps)).toFixed(2)),
  ratioToMessagePort: Number((gf / af).toFixed(4)),
};
if (cli.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else
  log(
    `net guest to guest (medians, ${result.frameBytes}-byte frames): ${result.guestFramesPerSec} frames/s, ${result.guestMBps} MB/s, ${result.guestLostFrames} lost; anchor MessagePort pair: ${result.anchorMessagePortFramesPerSec} frames/s, ${result.anchorMessagePortMBps} MB/s; ratio ${result.ratioToMessagePort}`,
  );
process.exit(0);
