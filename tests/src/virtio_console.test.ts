import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";
import { runVirtioGuest } from "./helpers/virtio.js";
import { until } from "./helpers/wait.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("virtio-console through an IOREQ server in a driver domain, grants only", () => {
  for (const [what, args] of [
    ["EVENT_IDX and INDIRECT_DESC", ""],
    ["neither EVENT_IDX nor INDIRECT_DESC", "event_idx=0 indirect_desc=0"],
  ] as const) {
    it(`vconsole prints through the transmitq into its console stream and echoes host input (${what})`, async () => {
      const r = await runVirtioGuest(
        "vconsole",
        args,
        { kind: "console", cols: 100, rows: 40 },
        {
          during: async (run) => {
            const backend = run.driverDomains[0]!;
            const out = () => run.outs[0]!;
            await until(() => out().includes("vcon: hello through virtio-console\n"), 30_000);
            // Input split across sends and across lines, with a CR the guest drops.
            backend.sendInput(enc("first li"));
            backend.sendInput(enc("ne\r\nsecond\n"));
            await until(() => out().includes("echo: second\n"), 30_000);
            backend.sendInput(enc("quit\n"));
          },
        },
      );
      const why = `${r.detail ?? ""}\n${r.out}\n${r.log.join("\n")}`;
      const ev = args === "" ? 1 : 0;
      assert.match(
        r.out,
        new RegExp(
          `^vconsole: device at 0x2000000 backend d\\d+ grants 1 cols 100 rows 40 emerg 1 event_idx ${ev} indirect ${ev}$`,
          "m",
        ),
        why,
      );
      // The device's lines, in order, in the same stream as CONSOLEIO output.
      const lines = r.out.split("\n").filter((l) => l.startsWith("vcon: ") || l.startsWith("echo: "));
      assert.deepEqual(
        lines,
        [
          "vcon: emergency write",
          "vcon: hello through virtio-console",
          "echo: first line",
          "echo: second",
          "vcon: bye",
        ],
        why,
      );
      assert.match(r.out, /^vconsole: done 3 lines, 24 bytes received, \d+ sent$/m, why);
      assert.equal(r.reason, 0, why);
      assert.deepEqual(r.log, [], "the backend logged no broken rule");
    });
  }
});

describe("xenon run --virtio-console", () => {
  it("the guest's virtio-console lines join its (name) console lines; stdin is its input", async () => {
    const r = await runXenon(
      ["run", "--timeout", "60", "--virtio-console", "1:120x50", `${guestImagePath("vconsole")},name=vc`],
      90_000,
      "hello from stdin\nquit\n",
    );
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr.toString()}`;
    assert.equal(r.status, 0, why);
    assert.match(out, /^\(vc\) vconsole: device at 0x2000000 backend d2 grants 1 cols 120 rows 50 /m, why);
    assert.match(out, /^\(vc\) vcon: hello through virtio-console$/m, why);
    assert.match(out, /^\(vc\) echo: hello from stdin$/m, why);
    assert.match(out, /^\(vc\) vcon: bye$/m, why);
    const bad = await runXenon(["run", "--virtio-console", "1:80", guestImagePath("hello")]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.toString(), /--virtio-console '1:80' is not DOM\[:COLSxROWS\]/);
  });
});
