import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { XENON_BIN } from "./helpers/run.js";

/**
 * `xenon run --xenstore-socket`: the toolstack introduces each domain to XenStore as libxl does
 * (/local/domain/<id>/name and domid, @introduceDomain) and releases it when it is gone; Debian's
 * tools see that through the socket while the domains run.
 */
const hasTools = spawnSync("sh", ["-c", "command -v xenstore-ls && command -v xenstore-exists"]).status === 0;

it("domains appear in XenStore while they run and are released when they power off", {
  skip: !hasTools && "xenstore-utils missing",
}, async () => {
  const sock = join(mkdtempSync(join(tmpdir(), "xenon-xsdom-")), "xs.sock");
  const child = spawn(
    process.execPath,
    [
      XENON_BIN,
      "run",
      "--timeout",
      "4",
      "--xenstore-socket",
      sock,
      `${guestImagePath("spin")},name=burner,report=0,total=0`,
      `${guestImagePath("hello")},name=greeter`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const xs = (...args: string[]) =>
    spawnSync(args[0]!, args.slice(1), { env: { ...process.env, XENSTORED_PATH: sock }, encoding: "utf8" });
  // The CLI announces the socket once every domain is introduced (the socket itself may be
  // listening a little earlier, while the introductions are still on their way).
  let stderr = "";
  const announced = new Promise<void>((resolve) =>
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      if (stderr.includes("xenstored listening on")) resolve();
    }),
  );
  await Promise.race([announced, new Promise((r) => setTimeout(r, 5000))]);
  assert.ok(existsSync(sock), `the socket appeared and was announced: ${stderr}`);
  // greeter powers off within moments; burner spins until the timeout.
  let greeterGone = false;
  for (let i = 0; i < 100 && !greeterGone; i++) {
    greeterGone = xs("xenstore-exists", "/local/domain/2").status !== 0;
    if (!greeterGone) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(greeterGone, "the powered-off domain was released");
  const ls = xs("xenstore-ls", "/local/domain/1");
  assert.equal(ls.status, 0, ls.stderr);
  assert.match(ls.stdout, /^name = "burner"$/m);
  assert.match(ls.stdout, /^domid = "1"$/m);
  assert.equal(await exited, 124, "the spinning domain ran until the timeout");
  assert.ok(!existsSync(sock), "the socket is removed when the host stops");
});
