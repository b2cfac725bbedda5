/**
 * `pnpm bench xenstore [--json] [--runs N] [--requests N]`: XenStore requests per second over the
 * daemon's Unix socket (what Debian's xenstore-* tools use), sequential (one request in flight) and
 * pipelined (all in flight), a WRITE/READ mix on distinct keys; side by side in the same run with
 * the anchor: a Unix-socket echo server speaking the same framing (the transport's own ceiling).
 *
 * Guest ring: xsclient.elf (the C client) makes `--ring-requests` sequential READs over its ring
 * to the XenStore domain (its own worker) under the real core, timing itself with rdtime; the
 * anchor beside it is a guest-to-guest event-channel round trip (pingpong.elf), the least a ring
 * request costs (request notify + reply notify).
 */

import { mkdtempSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeMessage, startXenstoredServer, XS_TYPES, XsParser } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { runSystem } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";

const cli = benchCli();
const runs = cli.num("--runs", 5);
const requests = cli.num("--requests", 20_000);
const ringRequests = cli.num("--ring-requests", 2000);
const dir = mkdtempSync(join(tmpdir(), "xenon-xsbench-"));
const enc = new TextEncoder();

/** A tiny client: sends frames, resolves when `n` replies have arrived. */
async function connect(path: string): Promise<{ sock: Socket; replies(n: number): Promise<void> }> {
  const sock = createConnection(path);
  await new Promise<void>((r) => sock.once("connect", () => r()));
  const parser = new XsParser();
  let got = 0;
  let want = 0;
  let wake: (() => void) | null = null;
  sock.on("data", (chunk: Buffer) => {
    got += parser.feed(chunk).length;
    if (wake && got >= want) {
      const w = wake;
      wake = null;
      w();
    }
  });
  return {
    sock,
    replies(n) {
      want += n;
      if (got >= want) return Promise.resolve();
      return new Promise((r) => {
        wake = r;
      });
    },
  };
}

function frame(i: number): Uint8Array {
  const key = `/bench/k${i % 512}`;
  return i % 2 === 0
    ? encodeMessage(XS_TYPES.WRITE, i, 0, enc.encode(`${key}\0value-${i}`))
    : encodeMessage(XS_TYPES.READ, i, 0, enc.encode(`${key}\0`));
}

async function measure(path: string): Promise<{ seq: number; pipe: number }> {
  const c = await connect(path);
  // Sequential: one in flight.
  const nSeq = Math.max(100, requests / 10);
  let t0 = performance.now();
  for (let i = 0; i < nSeq; i++) {
    c.sock.write(frame(i));
    await c.replies(1);
  }
  const seq = nSeq / ((performance.now() - t0) / 1000);
  // Pipelined: everything in flight.
  t0 = performance.now();
  const batch: Uint8Array[] = [];
  for (let i = 0; i < requests; i++) batch.push(frame(i));
  c.sock.write(Buffer.concat(batch));
  await c.replies(requests);
  const pipe = requests / ((performance.now() - t0) / 1000);
  c.sock.destroy();
  return { seq, pipe };
}

/** The anchor: echoes each complete frame back, doing no work. */
async function echoServer(path: string): Promise<() => Promise<void>> {
  const server = createServer((s) => {
    const parser = new XsParser();
    s.on("data", (chunk: Buffer) => {
      for (const m of parser.feed(chunk)) s.write(encodeMessage(m.type, m.reqId, m.txId, m.payload));
    });
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return () => new Promise<void>((r) => server.close(() => r()));
}

/** Runs guest images under the core and returns their console lines as "name: line". */
async function guests(
  domains: { name: string; image: string; bootargs: string }[],
  opts: { xenstore?: boolean; evtchns?: { a: number; aPort: number; b: number; bPort: number }[] },
): Promise<string[]> {
  const lines: string[] = [];
  const r = await runSystem({
    domains: domains.map((d) => ({ path: guestImagePath(d.image), name: d.name, memoryMiB: 2, bootargs: d.bootargs })),
    ...(opts.evtchns ? { evtchns: opts.evtchns } : {}),
    ...(opts.xenstore ? { xenstore: true } : {}),
    pcpus: 2,
    console: (name, line) => lines.push(`${name}: ${line}`),
    timeoutMs: 120_000,
  });
  if (r.timedOut || r.ends.some((e) => e.reason !== 0)) throw new Error(`guests failed:\n${lines.join("\n")}`);
  return lines;
}

/** Requests per second over a guest ring, and guest event round trips per second beside it. */
async function measureRing(): Promise<{ ring: number; evtchn: number }> {
  const xl = await guests([{ name: "xs", image: "xsclient", bootargs: `mode=bench count=${ringRequests}` }], {
    xenstore: true,
  });
  const m = xl.map((l) => /^xs: xsclient: bench: (\d+) reads in (\d+) us$/.exec(l)).find((x) => x !== null);
  if (!m) throw new Error(`xsclient printed no timing:\n${xl.join("\n")}`);
  const ring = Number(m[1]) / (Number(m[2]) / 1e6);
  const pl = await guests(
    [
      { name: "ping", image: "pingpong", bootargs: `role=ping peer=2 port=5 rounds=${ringRequests}` },
      { name: "pong", image: "pingpong", bootargs: `role=pong peer=1 port=5 rounds=${ringRequests}` },
    ],
    { evtchns: [{ a: 1, aPort: 5, b: 2, bPort: 5 }] },
  );
  const p = pl.map((l) => /^ping: pingpong: ping elapsed (\d+) us/.exec(l)).find((x) => x !== null);
  if (!p) throw new Error(`pingpong printed no timing:\n${pl.join("\n")}`);
  return { ring, evtchn: ringRequests / (Number(p[1]) / 1e6) };
}

const xsPath = join(dir, "xenstored.sock");
const echoPath = join(dir, "echo.sock");
const xs = await startXenstoredServer(xsPath);
const closeEcho = await echoServer(echoPath);
await measure(xsPath); // warm-up
await measure(echoPath);
const xsSeq: number[] = [];
const xsPipe: number[] = [];
const echoSeq: number[] = [];
const echoPipe: number[] = [];
for (let i = 0; i < runs; i++) {
  const a = await measure(xsPath);
  const b = await measure(echoPath);
  xsSeq.push(a.seq);
  xsPipe.push(a.pipe);
  echoSeq.push(b.seq);
  echoPipe.push(b.pipe);
  cli.log(
    `  run ${i + 1}: xenstored ${a.seq.toFixed(0)} req/s sequential, ${a.pipe.toFixed(0)} pipelined; echo ${b.seq.toFixed(0)} / ${b.pipe.toFixed(0)}`,
  );
}
await xs.close();
await closeEcho();
await measureRing(); // warm-up
const ringRps: number[] = [];
const evtchnRps: number[] = [];
for (let i = 0; i < runs; i++) {
  const r = await measureRing();
  ringRps.push(r.ring);
  evtchnRps.push(r.evtchn);
  cli.log(
    `  run ${i + 1}: guest ring ${r.ring.toFixed(0)} req/s sequential; guest event round trips ${r.evtchn.toFixed(0)}/s`,
  );
}
const result = {
  bench: "xenstore",
  runs,
  requests,
  socketSequentialReqPerS: Math.round(median(xsSeq)),
  socketPipelinedReqPerS: Math.round(median(xsPipe)),
  anchorEchoSequentialReqPerS: Math.round(median(echoSeq)),
  anchorEchoPipelinedReqPerS: Math.round(median(echoPipe)),
  sequentialRatio: Number((median(xsSeq) / median(echoSeq)).toFixed(3)),
  pipelinedRatio: Number((median(xsPipe) / median(echoPipe)).toFixed(3)),
  ringRequests,
  ringSequentialReqPerS: Math.round(median(ringRps)),
  anchorEvtchnRoundTripsPerS: Math.round(median(evtchnRps)),
  ringRatio: Number((median(ringRps) / median(evtchnRps)).toFixed(3)),
  ringVsSocketSequential: Number((median(ringRps) / median(xsSeq)).toFixed(3)),
};
if (cli.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  cli.log(
    `xenstore over the socket (medians): ${result.socketSequentialReqPerS} req/s sequential (${result.sequentialRatio} of the echo anchor), ${result.socketPipelinedReqPerS} req/s pipelined (${result.pipelinedRatio} of the echo anchor)`,
  );
  cli.log(
    `xenstore over a guest ring (medians): ${result.ringSequentialReqPerS} req/s sequential (${result.ringRatio} of the guest event round-trip anchor, ${result.anchorEvtchnRoundTripsPerS}/s; ${result.ringVsSocketSequential} of the socket's sequential rate)`,
  );
}
process.exit(0);
