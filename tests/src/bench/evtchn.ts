/**
 * `pnpm bench evtchn [--json] [--rounds N] [--runs N]`: event-channel round trip, median µs.
 *  - two RV32 guests bouncing an event over a static interdomain channel (pingpong.elf) under
 *    the core with two pCPU workers;
 *  - two TypeScript domains bouncing an event through their hypercall ports (thread mode);
 *  - anchors in the same run: a worker_threads postMessage round trip and a SharedArrayBuffer
 *    Atomics.waitAsync/notify round trip (the crossings the design is bounded by).
 * Goal (issue 3): <= 10 µs round trip.
 */
import { existsSync } from "node:fs";
import { MessageChannel, Worker } from "node:worker_threads";
import { guestImagePath } from "@xenon/guests";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import { HypercallClient, Hypervisor, p2mPoolPagesFor, servePort } from "@xenon/hypervisor";
import { runSystem } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";

const cli = benchCli();
const json = cli.json;
const rounds = cli.num("--rounds", 2000);
const runs = cli.num("--runs", 5);
const log = cli.log;

async function tsDomains(): Promise<number> {
  const memory = new MachineMemory({ bytes: 64 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const mk = async (name: string) => {
    const d = hv.domains.create({ name, maxVcpus: 1, maxPages: 0, p2mPoolPages: p2mPoolPagesFor(0) });
    if (typeof d === "number") throw new Error(`create ${d}`);
    const { port1, port2 } = new MessageChannel();
    servePort(hv, d.domid, port1);
    return HypercallClient.connect(port2);
  };
  const a = await mk("a");
  const b = await mk("b");
  const pa = await a.evtchnAllocUnbound(b.domid);
  const pb = await b.evtchnBindInterdomain(a.domid, pa);
  let n = 0;
  const ignore = () => {};
  const done = new Promise<void>((resolve) => {
    b.bind(pb, () => b.evtchnSend(pb).catch(ignore));
    a.bind(pa, () => {
      if (++n === rounds) resolve();
      else a.evtchnSend(pa).catch(ignore);
    });
  });
  const loops = [a.eventLoop(), b.eventLoop()];
  const t0 = performance.now();
  await a.evtchnSend(pa);
  await done;
  const us = ((performance.now() - t0) * 1000) / rounds;
  a.close();
  b.close();
  await Promise.all(loops);
  return us;
}

async function guests(): Promise<number | null> {
  let image: string;
  try {
    image = guestImagePath("pingpong");
  } catch {
    return null;
  }
  if (!existsSync(image)) return null;
  const lines: string[] = [];
  const r = await runSystem({
    domains: [
      { path: image, name: "ping", memoryMiB: 2, bootargs: `role=ping peer=2 port=5 rounds=${rounds}` },
      { path: image, name: "pong", memoryMiB: 2, bootargs: `role=pong peer=1 port=5 rounds=${rounds}` },
    ],
    evtchns: [{ a: 1, aPort: 5, b: 2, bPort: 5 }],
    pcpus: 2,
    console: (name, line) => lines.push(`${name}: ${line}`),
    timeoutMs: 120_000,
  });
  if (r.timedOut || r.ends.some((e) => e.reason !== 0)) throw new Error(`pingpong failed:\n${lines.join("\n")}`);
  // The guest measures its own elapsed time with rdtime: "ping elapsed T us (...)".
  const m = lines.map((l) => /^ping: pingpong: ping elapsed (\d+) us/.exec(l)).find((x) => x !== null);
  if (!m) throw new Error(`pingpong printed no timing:\n${lines.join("\n")}`);
  return Number(m[1]) / rounds;
}

async function anchors(): Promise<{ postMessageUs: number; atomicsUs: number }> {
  const bellBuf = new SharedArrayBuffer(8);
  const bell = new Int32Array(bellBuf);
  const w = new Worker(new URL("./fixtures/echo_worker.js", import.meta.url), { workerData: bellBuf });
  await new Promise((r) => w.once("online", r));
  let t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    const got = new Promise((r) => w.once("message", r));
    w.postMessage(i);
    await got;
  }
  const postMessageUs = ((performance.now() - t0) * 1000) / rounds;
  t0 = performance.now();
  for (let i = 1; i <= rounds; i++) {
    Atomics.store(bell, 0, i);
    Atomics.notify(bell, 0);
    while (Atomics.load(bell, 1) !== i) {
      const r = Atomics.waitAsync(bell, 1, Atomics.load(bell, 1));
      if (r.async) await r.value;
    }
  }
  const atomicsUs = ((performance.now() - t0) * 1000) / rounds;
  Atomics.store(bell, 0, -1);
  Atomics.notify(bell, 0);
  await w.terminate();
  return { postMessageUs, atomicsUs };
}

const ts: number[] = [];
const gs: number[] = [];
const pm: number[] = [];
const at: number[] = [];
for (let i = 0; i < runs; i++) {
  ts.push(await tsDomains());
  const g = await guests();
  if (g !== null) gs.push(g);
  const a = await anchors();
  pm.push(a.postMessageUs);
  at.push(a.atomicsUs);
  log(
    `  run ${i + 1}: TS domains ${ts[i]!.toFixed(1)} µs, guests ${g === null ? "n/a" : `${g.toFixed(1)} µs`}, postMessage ${a.postMessageUs.toFixed(1)} µs, Atomics ${a.atomicsUs.toFixed(1)} µs`,
  );
}
const result = {
  bench: "evtchn",
  rounds,
  runs,
  guestRoundTripUs: gs.length ? Number(median(gs).toFixed(2)) : null,
  tsDomainRoundTripUs: Number(median(ts).toFixed(2)),
  anchorPostMessageUs: Number(median(pm).toFixed(2)),
  anchorAtomicsUs: Number(median(at).toFixed(2)),
  tsRatioToPostMessage: Number((median(ts) / median(pm)).toFixed(3)),
  guestRatioToPostMessage: gs.length ? Number((median(gs) / median(pm)).toFixed(3)) : null,
  goalUs: 10,
};
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
else
  log(
    `evtchn round trip (medians): guests ${result.guestRoundTripUs ?? "n/a"} µs, TS domains ${result.tsDomainRoundTripUs} µs; anchors: postMessage ${result.anchorPostMessageUs} µs, Atomics ${result.anchorAtomicsUs} µs (goal <= 10 µs)`,
  );
process.exit(0);
