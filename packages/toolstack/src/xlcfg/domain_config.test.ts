import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { domainConfigFromText } from "./domain_config.js";
import { XlCfgError } from "./parser.js";

test("an xl.cfg becomes a DomainConfig with xl's defaults", () => {
  const c = domainConfigFromText("name = 'g'\nkernel = 'hello'\n", "g.cfg");
  assert.deepEqual(c, {
    name: "g",
    memoryMiB: 32,
    maxmemMiB: 32,
    vcpus: 1,
    maxvcpus: 1,
    kernel: "hello",
    cmdline: "",
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "destroy",
    onWatchdog: "destroy",
    sched: {},
    disks: [],
    vifs: [],
    virtio: [],
  });
});

test("every supported key, and a kernel found beside the cfg file", () => {
  const dir = mkdtempSync(join(tmpdir(), "xlcfg-"));
  writeFileSync(join(dir, "k.elf"), "x");
  const c = domainConfigFromText(
    [
      'name = "web"',
      'type = "pvh"',
      "memory = 16",
      "maxmem = 24",
      "vcpus = 2",
      "maxvcpus = 3",
      'cpus = ["0", "1-2", "all,^0"]',
      'cpus_soft = "1"',
      'pool = "rt"',
      'kernel = "k.elf"',
      'root = "/dev/xvda"',
      'extra = "quiet"',
      "cpu_weight = 512",
      "cap = 50",
      "period = 10000",
      "budget = 2000",
      "extratime = 1",
      'on_poweroff = "preserve"',
      'on_reboot = "destroy"',
      'on_crash = "coredump-restart"',
      "unknown_key = 'ignored, as xl does'",
    ].join("\n"),
    join(dir, "web.cfg"),
  );
  assert.equal(c.kernel, join(dir, "k.elf"));
  assert.equal(c.cmdline, "root=/dev/xvda quiet");
  assert.deepEqual(c.cpus, ["0", "1-2", "all,^0"]);
  assert.deepEqual(c.cpusSoft, ["1"]);
  assert.equal(c.pool, "rt");
  assert.deepEqual(c.sched, { weight: 512, cap: 50, periodUs: 10000, budgetUs: 2000, extratime: true });
  assert.deepEqual([c.memoryMiB, c.maxmemMiB, c.vcpus, c.maxvcpus], [16, 24, 2, 3]);
  assert.deepEqual([c.onPoweroff, c.onReboot, c.onCrash], ["preserve", "destroy", "coredump-restart"]);
});

test("command-line overrides come after the file (xl create cfg KEY=VALUE)", () => {
  const c = domainConfigFromText("name = 'a'\nkernel = 'hello'\nmemory = 8\n", "a.cfg", ["memory=12", "name='b'"]);
  assert.equal(c.memoryMiB, 12);
  assert.equal(c.name, "b");
  assert.equal(domainConfigFromText("name='a'\nkernel='x'\ncmdline='c'\nroot='r'\n", "a.cfg").cmdline, "c");
});

test("bad values are refused with the file, the line and xl's words", () => {
  const cases: Array<[string, RegExp]> = [
    ["kernel = 'hello'\n", /^c\.cfg:0: Domain name must be specified\.$/],
    ["name = 'a'\n", /kernel must be specified/],
    ["name = 'a b'\nkernel='x'\n", /^c\.cfg:1: invalid domain name "a b"$/],
    ["name='a'\nkernel='x'\n\nmemory = 'lots'\n", /^c\.cfg:4: parameter `memory' is not a valid number$/],
    ["name='a'\nkernel='x'\nmemory = 0\n", /^c\.cfg:3: memory=0 is out of range 1\.\.3072$/],
    ["name='a'\nkernel='x'\nmemory = 8\nmaxmem = 4\n", /^c\.cfg:4: maxmem \(4 MiB\) is smaller than memory \(8 MiB\)$/],
    ["name='a'\nkernel='x'\nvcpus = 4\nmaxvcpus = 2\n", /maxvcpus \(2\) is smaller than vcpus \(4\)/],
    ["name='a'\nkernel='x'\nvcpus = 0\n", /vcpus=0 is out of range/],
    ["name='a'\nkernel='x'\non_crash = 'explode'\n", /^c\.cfg:3: Unknown on_crash action "explode" specified$/],
    ["name='a'\nkernel='x'\non_reboot = 'soft-reset'\n", /soft-reset is not supported/],
    ["name='a'\nkernel='x'\ncpus = '0-'\n", /^c\.cfg:3: cpus: invalid cpu list '0-'/],
    ["name='a'\nkernel='x'\ncpus = '3-1'\n", /invalid cpu range '3-1'/],
    ["name='a'\nkernel='x'\ncpus = 'nodes:0'\n", /NUMA node lists are not supported/],
    ["name='a'\nkernel='x'\ncpus = ['0', '1']\n", /cpus: 2 entries for 1 vCPU/],
    ["name='a'\nkernel='x'\ncpu_weight = 0\n", /cpu_weight=0 is out of range 1\.\.65535/],
    ["name='a'\nkernel='x'\ntype = 'hvm'\n", /guest type "hvm" is not supported/],
    ["name='a'\nkernel='x'\nramdisk = 'r'\n", /ramdisk is not supported yet/],
    ["name='a'\nkernel='x'\ndisk = 'xvda'\n", /parameter `disk' is a single value but should be a list/],
    ["name=['a']\nkernel='x'\n", /parameter `name' is a list but should be a single value/],
    ["name='a'\nkernel='x'\nmemory = 8 8\n", /config parsing error near `8'/],
  ];
  for (const [src, re] of cases)
    assert.throws(
      () => domainConfigFromText(src, "c.cfg"),
      (e: unknown) => e instanceof XlCfgError && re.test(e.message),
      src,
    );
});
