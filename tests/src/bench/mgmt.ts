/**
 * `pnpm bench mgmt [--json] [--rounds N] [--runs N]`: the management endpoint, median µs/ms.
 *  - a `hello` request/reply through the endpoint (WebSocket framing, msgpack, dispatch, reply)
 *    vs the anchor: a bare TCP echo round trip of a 20-byte message over the same loopback — the
 *    ratio is what WebSocket + the protocol layer cost over the transport;
 *  - `domain.list` (getdomaininfolist through the libxl API) round trip;
 *  - create -> first console byte of hello.elf through the endpoint;
 *  - an `xl list` process end to end vs the anchor `node -e ""` (the CLI's cost over a bare
 *    Node start).
 */
import { spawn } from "node:child_process";
import { type AddressInfo, connect, createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { MgmtClient, XenonHost } from "@xenon/toolstack";
import { benchCli, median } from "../helpers/bench.js";

const cli = benchCli();
const rounds = cli.num("--rounds", 2000);
const runs = cli.num("--runs", 5);
const XL_BIN = fileURLToPath(new URL("../../../packages/toolstack/bin/xl.js", import.meta.url));

async function echoAnchor(): Promise<number> {
  const server = createServer((sock) => sock.on("data", (d) => sock.write(d)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const sock = connect((server.address() as AddressInfo).port, "127.0.0.1");
  sock.setNoDelay(true);
  await new Promise((r) => sock.once("connect", r));
  const payload = Buffer.alloc(20, 1);
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    let got = 0;
    await new Promise<void>((r) => {
      const on = (d: Buffer) => {
        got += d.length;
        if (got >= payload.length) {
          sock.off("data", on);
          r();
        }
      };
      sock.on("data", on);
      sock.write(payload);
    });
  }
  const us = ((performance.now() - t0) * 1000) / rounds;
  sock.destroy();
  await new Promise((r) => server.close(r));
  return us;
}

async function requests(c: MgmtClient, op: string): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await c.request(op);
  return ((performance.now() - t0) * 1000) / rounds;
}

const hello = (name: string) => ({
  name,
  memoryMiB: 4,
  maxmemMiB: 4,
  vcpus: 1,
  maxvcpus: 1,
  kernel: "hello",
  cmdline: "",
  onPoweroff: "preserve",
  onReboot: "restart",
  onCrash: "destroy",
  onWatchdog: "destroy",
  sched: {},
  disks: [],
  vifs: [],
  virtio: [],
});

async function createToConsole(c: MgmtClient, i: number): Promise<number> {
  const t0 = performance.now();
  const { domid } = await c.request<{ domid: number }>("domain.create", { config: hello(`b${i}`) });
  let first!: () => void;
  const got = new Promise<void>((r) => {
    first = r;
  });
  const s = await c.openStream("domain.console", { dom: domid }, { data: () => first() });
  await got;
  const ms = performance.now() - t0;
  await c.request("stream.cancel", { stream: s.id });
  await c.request("domain.destroy", { dom: domid });
  return ms;
}

/** Wall time of a child process (async: the host in this process must keep serving). */
function proc(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (status) =>
      status === 0 ? resolve(performance.now() - t0) : reject(new Error(`${args.join(" ")}: status ${status}`)),
    );
  });
}

const host = await XenonHost.start({
  pools: [{ name: "Pool-0", scheduler: "credit2", pcpus: [0, 1].map((id) => ({ id, cls: "big", speed: 1024 })) }],
  hostMemoryMiB: 256,
});
const c = await MgmtClient.connect(host.url);
const echo: number[] = [];
const hellos: number[] = [];
const lists: number[] = [];
const creates: number[] = [];
const xlList: number[] = [];
const nodeBare: number[] = [];
for (let r = 0; r < runs; r++) {
  echo.push(await echoAnchor());
  hellos.push(await requests(c, "hello"));
  lists.push(await requests(c, "domain.list"));
  creates.push(await createToConsole(c, r));
  nodeBare.push(await proc(["-e", ""], {}));
  xlList.push(await proc([XL_BIN, "list"], { XENON_HOST: host.url }));
  cli.log(`run ${r + 1}/${runs}`);
}
c.close();
await host.close();

const result = {
  rounds,
  runs,
  tcpEchoUs: median(echo),
  helloUs: median(hellos),
  helloVsEcho: median(hellos) / median(echo),
  domainListUs: median(lists),
  createToConsoleMs: median(creates),
  xlListMs: median(xlList),
  nodeStartMs: median(nodeBare),
  xlListVsNodeStart: median(xlList) / median(nodeBare),
};
if (cli.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  cli.log(`TCP echo round trip (anchor)    ${result.tcpEchoUs.toFixed(1)} µs`);
  cli.log(
    `hello request/reply             ${result.helloUs.toFixed(1)} µs  (${result.helloVsEcho.toFixed(2)}x the echo)`,
  );
  cli.log(`domain.list request/reply       ${result.domainListUs.toFixed(1)} µs`);
  cli.log(`create -> first console byte    ${result.createToConsoleMs.toFixed(1)} ms`);
  cli.log(`node -e "" (anchor)             ${result.nodeStartMs.toFixed(1)} ms`);
  cli.log(
    `xl list process                 ${result.xlListMs.toFixed(1)} ms  (${result.xlListVsNodeStart.toFixed(2)}x a bare node start)`,
  );
}
