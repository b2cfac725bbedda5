import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runProcess } from "./helpers/run.js";

/**
 * `pnpm demo` in its short mode (every `rounds=` lowered): the demo tree boots under
 * `xenon boot --serve --until-done`, every domain's console is prefixed by its name, the real xl
 * lists the host and shuts the service domain down, and the demo exits 0 once every guest has
 * powered off.
 */
const DEMO = fileURLToPath(new URL("../../scripts/demo.mjs", import.meta.url));

describe("pnpm demo (short)", () => {
  it("boots the demo system, shows xl list and vcpu-list, and exits 0 when the guests are done", async () => {
    const r = await runProcess(process.execPath, [DEMO, "--short"], 180_000);
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr}`;
    assert.equal(r.status, 0, why);
    assert.match(out, /^\(hello\) Hello from Xenon guest, vCPU 0$/m, why);
    assert.match(out, /^\(ping\) pingpong: ping done 10 rounds$/m, why);
    assert.match(out, /^\(pong\) pingpong: pong done 10 rounds$/m, why);
    assert.match(out, /^\(mapper\) grantshare: unmap revoked access$/m, why);
    assert.match(out, /^\(shm_borrower\) shmem: borrower read 1024 words, pattern ok$/m, why);
    // kvstore on its disk and vif, netping querying it over the host switch, then stopping it.
    assert.match(out, /^\(kvstore\) kvstore: disk 2048 sectors, mac 00:16:3e:00:00:10, \d+ keys loaded$/m, why);
    assert.match(out, /^\(netping\) netping: kv put 8 get 8 verified 8 errors 0$/m, why);
    assert.match(out, /^\(kvstore\) kvstore: stopped after \d+ requests, 8 keys$/m, why);
    assert.match(out, /^\(console_user\) vcon: hello through virtio-console$/m, why);
    // xl list: the header, Domain-0, the console service and the driver domain (up for the whole run).
    assert.match(out, /^\$ xl list\nName +ID +Mem VCPUs\tState\tTime\(s\)\nDomain-0 +0 /m, why);
    assert.match(out, /^console_user +8 +2 +1 +[r-][b-]-{4} /m, why);
    assert.match(out, /^storage +11 +0 +1 +[r-][b-]-{4} /m, why);
    assert.match(out, /^\$ xl vcpu-list\nName +ID +VCPU +CPU +State +Time\(s\) Affinity \(Hard \/ Soft\)$/m, why);
    assert.match(out, /^console_user +8 +0 +[0-3-] +/m, why);
    // The service domain ends with xl shutdown, and the host with it.
    assert.match(out, /^\$ xl shutdown console_user$/m, why);
    assert.doesNotMatch(r.stderr.toString(), /crashed|shut down/, why);
  });
});
