import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { planFromFile } from "@xenon/toolstack";
import { bootFixture } from "./helpers/boot_fixture.js";
import { runProcess, runXenon, XENON_BIN } from "./helpers/run.js";

/**
 * Virtio devices declared in the boot tree: driver domains (`xenon,driver-domain`) and the
 * guests' `xenon,virtio-device` nodes naming them by phandle. Static: every refusal happens at
 * plan time and names the node and property.
 */
const { source, compile, variant, dir } = bootFixture("virtio.dts");
const disk = join(dir, "disk.img");
writeFileSync(disk, new Uint8Array(1 << 20));

describe("xenon boot: virtio devices from the tree", () => {
  it("plans driver domains after the guests, each device naming its backend", () => {
    const plan = planFromFile(compile("plan"));
    assert.deepEqual(
      plan.domains.map((d) => d.name),
      ["disk_user", "rng_user"],
    );
    assert.deepEqual(plan.driverDomains, [{ name: "storage" }, { name: "entropy" }]);
    assert.deepEqual(plan.virtio, [
      { domain: 1, backend: 0, device: { kind: "blk", path: disk, readOnly: false } },
      { domain: 2, backend: 1, device: { kind: "rng" } },
    ]);
  });

  it("launches the driver domains and the guests use their devices through grants", async () => {
    writeFileSync(disk, new Uint8Array(1 << 20));
    const r = await runXenon(["boot", compile("system")], 120_000);
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr}`;
    assert.equal(r.status, 0, why);
    // domids: the guests 1 and 2, then storage 3 and entropy 4.
    assert.match(out, /^\(disk_user\) blkstress: disk 2048 sectors, id xenon-1048576, backend d3 grants 1$/m, why);
    assert.match(out, /^\(disk_user\) blkstress: done 1 rounds, 0 errors$/m, why);
    assert.match(out, /^\(rng_user\) rngcat: got 64 random bytes in 1 requests$/m, why);
    assert.notDeepEqual(readFileSync(disk).subarray(0, 4096), Buffer.alloc(4096), "the blocks reached the image");
  });

  it("under --serve the tree's driver domains use the host's XenStore: libxl's nodes, state Connected", async (t) => {
    writeFileSync(disk, new Uint8Array(1 << 20));
    const host = spawn(process.execPath, [XENON_BIN, "boot", "--serve", compile("serve_xs")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      const socket = await new Promise<string>((resolve, reject) => {
        host.stdout.on("data", (b: Buffer) => {
          out += b.toString();
          const m = /^XENSTORED_PATH=(.*)$/m.exec(out);
          if (m !== null) resolve(m[1]!);
        });
        host.on("close", (status) => reject(new Error(`host exited ${status}: ${out}`)));
      });
      const ls = await runProcess("sh", ["-c", `XENSTORED_PATH='${socket}' xenstore-ls -f /local/domain`]);
      if (ls.status === 127) return t.skip("xenstore-ls is not installed");
      const text = ls.stdout.toString();
      // storage (d3) serves disk_user (d1) a blk; entropy (d4) serves rng_user (d2) an rng.
      for (const line of [
        '/local/domain/3/backend/virtio/1/0/type = "virtio,device2"',
        '/local/domain/3/backend/virtio/1/0/state = "4"',
        '/local/domain/4/backend/virtio/2/0/type = "virtio,device4"',
        '/local/domain/4/backend/virtio/2/0/state = "4"',
        '/local/domain/3/name = "storage"',
      ])
        assert.ok(text.split("\n").includes(line), `missing '${line}' in:\n${text}\n${out}`);
    } finally {
      const closed = new Promise((r) => host.once("close", r));
      host.kill("SIGTERM");
      await closed;
    }
  });

  it("a read-only disk refuses the guest's writes", async () => {
    writeFileSync(disk, new Uint8Array(1 << 20));
    const tree = compile(
      "ro",
      variant('xenon,path = "disk.img";', 'xenon,path = "disk.img";\n                read-only;'),
    );
    assert.deepEqual(planFromFile(tree).virtio[0]?.device, { kind: "blk", path: disk, readOnly: true });
    const r = await runXenon(["boot", tree], 120_000);
    assert.match(r.stdout.toString(), /^\(disk_user\) blkstress: round 0 wrote 0 verified 0 errors \d+$/m);
    assert.equal(r.status, 1, "the guest failed its writes");
    assert.deepEqual(readFileSync(disk), Buffer.alloc(1 << 20));
  });

  it("xenon,grant-usage = <0>: no xen,grant-dma link, guest-physical addresses, a privileged backend", async () => {
    const tree = compile(
      "nogrant",
      variant('xenon,device = "rng";', 'xenon,device = "rng";\n                xenon,grant-usage = <0>;'),
    );
    assert.deepEqual(planFromFile(tree).virtio[1], {
      domain: 2,
      backend: 1,
      device: { kind: "rng" },
      grants: false,
    });
    const r = await runXenon(["boot", tree], 120_000);
    const out = r.stdout.toString();
    const why = `${out}\n${r.stderr}`;
    assert.equal(r.status, 0, why);
    // The guest names no backend when its tree has no grant-dma link.
    assert.match(out, /^\(rng_user\) rngcat: device at 0x2000000 port \d+ backend d0 grants 0$/m, why);
    assert.match(out, /^\(rng_user\) rngcat: got 64 random bytes in 1 requests$/m, why);
    assert.match(out, /^\(disk_user\) blkstress: disk 2048 sectors, id xenon-1048576, backend d3 grants 1$/m, why);
  });

  const refusals: Array<[string, string, RegExp]> = [
    [
      "an unknown device kind",
      variant('xenon,device = "rng";', 'xenon,device = "gpu";'),
      /\/chosen\/rng_user\/rng: xenon,device: unknown device kind 'gpu'/,
    ],
    [
      "a net device with a group MAC",
      variant('xenon,device = "rng";', 'xenon,device = "net"; local-mac-address = [01 00 5e 00 00 01];'),
      /\/chosen\/rng_user\/rng: local-mac-address: must be 6 bytes, a unicast MAC/,
    ],
    [
      "a grant usage other than 0 or 1",
      variant('xenon,device = "rng";', 'xenon,device = "rng"; xenon,grant-usage = <2>;'),
      /\/chosen\/rng_user\/rng: xenon,grant-usage: must be <0> or <1>, not <2>/,
    ],
    [
      "a device without a backend",
      variant("xenon,backend = <&entropy>;", ""),
      /\/chosen\/rng_user\/rng: xenon,backend: missing/,
    ],
    [
      "a backend that is not a driver domain",
      variant("xenon,backend = <&entropy>;", "xenon,backend = <&dus>;").replace("disk_user {", "dus: disk_user {"),
      /\/chosen\/rng_user\/rng: xenon,backend: disk_user is not a driver domain/,
    ],
    [
      "a missing disk image",
      variant('xenon,path = "disk.img";', 'xenon,path = "nope.img";'),
      /\/chosen\/disk_user\/disk: xenon,path: disk image 'nope\.img' not found beside the tree/,
    ],
    [
      "a driver domain with a kernel",
      variant(
        "xenon,driver-domain;\n        };\n\n        entropy",
        'xenon,driver-domain;\n            kernel { compatible = "multiboot,kernel"; xenon,path = "hello.elf"; };\n        };\n\n        entropy',
      ),
      /\/chosen\/storage: xenon,driver-domain: a driver domain runs the backends, not a kernel module/,
    ],
    [
      "a driver domain with memory",
      variant(
        "xenon,driver-domain;\n        };\n\n        entropy",
        "xenon,driver-domain;\n            memory = <0x0 0x800>;\n        };\n\n        entropy",
      ),
      /\/chosen\/storage: memory: a driver domain has no guest RAM/,
    ],
    [
      "a driver domain no device names",
      source.replace("xenon,backend = <&entropy>;", "xenon,backend = <&storage>;"),
      /\/chosen\/entropy: xenon,driver-domain: no xenon,virtio-device names it/,
    ],
  ];
  for (const [name, dts, message] of refusals) {
    it(`refuses ${name}, naming the node and property`, async () => {
      const r = await runXenon(["boot", compile(name.replace(/\W+/g, "_"), dts)]);
      assert.equal(r.status, 1, `status ${r.status}: ${r.stdout}`);
      assert.match(r.stderr.toString(), message);
      assert.equal(r.stdout.toString(), "", "nothing ran");
    });
  }
});
