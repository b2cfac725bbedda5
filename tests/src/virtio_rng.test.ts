import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runVirtioGuest } from "./helpers/virtio.js";

for (const mode of ["thread", "process"] as const)
  describe(`virtio-rng through an IOREQ server in a driver domain (${mode} mode), grants only`, () => {
    it("rngcat finds the device in its tree and reads random bytes", async () => {
      const r = await runVirtioGuest("rngcat", "bytes=48 rounds=3", { kind: "rng" }, { mode });
      assert.match(r.out, /^rngcat: device at 0x2000000 port 20 backend d\d+ grants 1$/m, r.out);
      const lines = r.out.split("\n").filter((l) => /^rngcat: [0-9a-f]{64}$/.test(l));
      assert.equal(lines.length, 3, r.out);
      assert.equal(new Set(lines).size, 3, "three different draws");
      assert.match(r.out, /^rngcat: got 144 random bytes in 3 requests$/m);
      assert.equal(r.reason, 0, `${r.detail ?? ""}\n${r.out}\n${r.log.join("\n")}`);
      assert.deepEqual(r.log, [], "the backend logged no broken rule");
    });
  });
