import assert from "node:assert/strict";
import { test } from "node:test";
import { Errno, type HypercallClient } from "@xenon/hypervisor";
import { TestClient } from "./testkit.js";
import { XenstoreDomain } from "./xenstore_domain.js";

/** Just enough of a hypercall client: VIRQ_DOM_EXC binds, getdomaininfo answers when the test says. */
function fakeClient() {
  const answers: Array<(v: number) => void> = [];
  let virq: () => void = () => {};
  const client = {
    call: (op: string) => {
      if (op === "evtchnBindVirq") return Promise.resolve(5);
      if (op === "domctlGetDomainInfo") return new Promise<number>((resolve) => answers.push(resolve));
      return Promise.resolve(-Errno.ENOSYS);
    },
    bind: (_port: number, fn: () => void) => {
      virq = fn;
    },
  } as unknown as HypercallClient;
  return { client, answers, fire: () => virq() };
}

const settle = () => new Promise((r) => setImmediate(r));

test("a release decided about an earlier introduction does not hit the domid introduced again meanwhile", async () => {
  const f = fakeClient();
  const dom = new XenstoreDomain(f.client);
  await dom.start();
  const dom0 = new TestClient(dom.daemon, 0);
  dom0.ok("INTRODUCE", ["7", "0", "0"]);
  dom0.write("/local/domain/7/kept", "1");
  // VIRQ_DOM_EXC: the check asks about domain 7; meanwhile the toolstack releases and introduces
  // it again (a restarted driver domain with the same domid); then the stale answer comes: gone.
  f.fire();
  await settle();
  assert.equal(f.answers.length, 1);
  dom0.ok("RELEASE", ["7"]);
  dom0.ok("INTRODUCE", ["7", "0", "0"]);
  dom0.write("/local/domain/7/kept", "2");
  f.answers[0]!(-Errno.ESRCH);
  await settle();
  assert.ok(dom.daemon.isIntroduced(7), "the new introduction stands");
  assert.equal(dom0.read("/local/domain/7/kept"), "2");
  // An answer about the current introduction still releases it.
  f.fire();
  await settle();
  f.answers[1]!(-Errno.ESRCH);
  await settle();
  assert.ok(!dom.daemon.isIntroduced(7));
  assert.equal(dom0.err("READ", ["/local/domain/7/kept"]), "ENOENT");
});
