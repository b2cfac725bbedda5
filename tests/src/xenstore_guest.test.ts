import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestImagePath } from "@xenon/guests";
import { runXenon } from "./helpers/run.js";

/**
 * xsclient.elf, the guest runtime's C XenStore client, under `xenon run --xenstore`: real guest
 * code on pCPU workers talking to the XenStore domain (its own worker) over ring pages and event
 * channels that the toolstack set up.
 */
const X = guestImagePath("xsclient");

function lines(out: Buffer, name: string): string[] {
  const prefix = `(${name}) xsclient: `;
  return out
    .toString()
    .split("\n")
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

describe("the C XenStore client over its ring", () => {
  it("read, write, directory, rm, transactions (EAGAIN redo), watches, and the denials", async () => {
    const r = await runXenon(["run", "--xenstore", "--timeout", "30", `${X},name=client`]);
    const out = lines(r.stdout, "client");
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok(!out.some((l) => l.startsWith("FAIL")), out.join("\n"));
    for (const want of [
      "demo: domain 1, home /local/domain/1, port 1",
      "name = client",
      "read data/greeting = hello from the ring (19)",
      "directory data/dir: 2 entries: a b",
      "after rm, read data/dir/a: ENOENT",
      "transaction committed: data/tx = inside",
      "transaction conflict: EAGAIN, retrying",
      "transaction done after 2 attempts: data/counter = mine",
      "watch event data/w tok",
      "watch event data/w/x tok",
      "reconnect: OK",
      "write /local/domain/0/intruder: EACCES",
      "write name: EACCES",
      "write 2049 bytes: ENOSPC",
      "introduce: EACCES",
      "demo done",
    ])
      assert.ok(out.includes(want), `missing '${want}' in:\n${out.join("\n")}`);
  });

  for (const mode of ["thread", "process"])
    it(`a virtio frontend reads the nodes the toolstack wrote and sees its ${mode}-mode backend Connected`, async () => {
      const r = await runXenon([
        "run",
        "--xenstore",
        "--timeout",
        "30",
        "--driver-domain-mode",
        mode,
        "--virtio-rng",
        "1",
        `${X},name=fe,mode=virtio`,
      ]);
      const out = lines(r.stdout, "fe");
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      // Domain 1 the guest, 2 its driver domain (the XenStore domain comes after them).
      for (const want of [
        "virtio: backend /local/domain/2/backend/virtio/1/0",
        "virtio: type virtio,device4",
        "virtio: transport mmio",
        "virtio: backend is Connected",
        "virtio: write backend state: EACCES",
        "virtio done",
      ])
        assert.ok(out.includes(want), `missing '${want}' in:\n${out.join("\n")}`);
    });

  it("two domains do a xenbus handshake through their shared directories", async () => {
    const r = await runXenon([
      "run",
      "--xenstore",
      "--timeout",
      "30",
      `${X},name=front,mode=front,peer=2`,
      `${X},name=back,mode=back,peer=1`,
    ]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const front = lines(r.stdout, "front");
    const back = lines(r.stdout, "back");
    assert.ok(front.includes("front: backend is Connected"), front.join("\n"));
    assert.ok(front.includes("front done"), front.join("\n"));
    assert.ok(back.includes("back: frontend is Connected"), back.join("\n"));
    assert.ok(back.includes("back done"), back.join("\n"));
  });

  it("a hostile ring gets error 2 and EIO, a flooding domain fills only its own ring; a third domain is served", async () => {
    const r = await runXenon([
      "run",
      "--xenstore",
      "--timeout",
      "30",
      `${X},name=bad,mode=hostile`,
      `${X},name=flooder,mode=flood,seconds=2`,
      `${X},name=good,mode=bench,count=200`,
    ]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const bad = lines(r.stdout, "bad");
    assert.ok(bad.includes("hostile: ring error 2"), bad.join("\n"));
    assert.ok(bad.includes("hostile: read after the error: EIO"), bad.join("\n"));
    assert.match(r.stderr.toString(), /xenstored: domain 1: ring closed: req_prod \d+ is more than a ring ahead/);
    const flood = lines(r.stdout, "flooder").find((l) => l.includes("requests written"));
    // It could write only until its own ring and the daemon's per-connection queue were full.
    const m = /^flood: (\d+) requests written, ring error 0$/.exec(flood ?? "");
    assert.ok(m !== null, String(flood));
    assert.ok(Number(m[1]) < 200, `the flooder was held back (${m[1]} requests)`);
    const good = lines(r.stdout, "good");
    assert.ok(
      good.some((l) => /^bench: 200 reads in \d+ us$/.test(l)),
      good.join("\n"),
    );
    // The good domain finished while the flooder was still at it (2 s).
    const order = r.stdout.toString().split("\n");
    const goodDone = order.findIndex((l) => l === "(good) xsclient: bench done");
    const floodDone = order.findIndex((l) => l.startsWith("(flooder) xsclient: flood: ") && l.includes("written"));
    assert.ok(goodDone >= 0 && goodDone < floodDone, "the good domain was not stalled behind the flood");
  });
});
