import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { domainConfigFromText } from "../xlcfg/domain_config.js";
import { absoluteDiskSpec, devicesOf, parseDiskSpec, parseVifSpec, parseVirtioSpec } from "./device.js";

const dir = mkdtempSync(join(tmpdir(), "xenon-device-spec-"));
const img = join(dir, "disk.img");
writeFileSync(img, new Uint8Array(4096));

describe("xl.cfg device specs", () => {
  it("disk: positional and key=value forms are the same disk; target= swallows commas", () => {
    const want = { device: { kind: "blk", path: img, readOnly: false }, grants: true };
    assert.deepEqual(parseDiskSpec(`${img},raw,xvda,rw`), want);
    assert.deepEqual(parseDiskSpec(`format=raw, vdev=xvda, access=rw, target=${img}`), want);
    assert.deepEqual(parseDiskSpec("disk.img,,xvda,ro", dir), { ...want, device: { ...want.device, readOnly: true } });
    const odd = join(dir, "a,b.img");
    writeFileSync(odd, new Uint8Array(512));
    assert.deepEqual(parseDiskSpec(`vdev=xvdb,target=${odd}`), {
      device: { kind: "blk", path: odd, readOnly: false },
      grants: true,
    });
    assert.equal(
      absoluteDiskSpec("disk.img,raw,xvda,r", dir),
      `format=raw,vdev=xvda,access=ro,specification=virtio,target=${img}`,
    );
  });

  it("vif: a MAC (lower-cased) or none (the host gives Xen's), the switch xenbr0", () => {
    assert.deepEqual(parseVifSpec("mac=00:16:3E:AB:00:01,bridge=xenbr0"), {
      device: { kind: "net", mac: "00:16:3e:ab:00:01" },
      grants: true,
    });
    assert.deepEqual(parseVifSpec("mtu=1400"), { device: { kind: "net", mac: "", mtu: 1400 }, grants: true });
  });

  it("virtio: type virtio,device<N> in hex, the comma inside it tolerated", () => {
    assert.deepEqual(parseVirtioSpec("type=virtio,device4"), { device: { kind: "rng" }, grants: true });
    assert.deepEqual(parseVirtioSpec("type=virtio,device3,grant_usage=1"), {
      device: { kind: "console" },
      grants: true,
    });
  });

  it("grant_usage=0|1 on disk, vif and virtio (default 1); 0 survives the host's absolute form", () => {
    assert.equal(parseDiskSpec(`${img},raw,xvda,rw,grant_usage=0`).grants, false);
    assert.equal(parseDiskSpec(`grant_usage=1,vdev=xvda,target=${img}`).grants, true);
    assert.equal(parseVifSpec("mac=00:16:3e:00:00:01,grant_usage=0").grants, false);
    assert.equal(parseVifSpec("grant_usage=1").grants, true);
    assert.equal(parseVirtioSpec("type=virtio,device4,grant_usage=0").grants, false);
    const host = absoluteDiskSpec("disk.img,raw,xvda,ro,grant_usage=0", dir);
    assert.equal(host, `format=raw,vdev=xvda,access=ro,specification=virtio,grant_usage=0,target=${img}`);
    assert.deepEqual(parseDiskSpec(host), { device: { kind: "blk", path: img, readOnly: true }, grants: false });
    // The config as the host gets it: its devices, in disk, vif, virtio order.
    const c = domainConfigFromText(
      `name = "g"\nkernel = "hello.elf"\ndisk = [ "${img},raw,xvda,rw,grant_usage=0" ]\nvif = [ "grant_usage=1" ]\nvirtio = [ "type=virtio,device4,grant_usage=0" ]\n`,
      join(dir, "g.cfg"),
    );
    assert.deepEqual(
      devicesOf(c).map((d) => [d.device.kind, d.grants]),
      [
        ["blk", false],
        ["net", true],
        ["rng", false],
      ],
    );
  });

  const refusals: Array<[string, string, RegExp]> = [
    ["a disk without vdev", `disk = [ "target=${img}" ]`, /f\.cfg:4: disk '.*': no vdev/],
    ["a qcow2 disk", `disk = [ "${img},qcow2,xvda" ]`, /format 'qcow2': only raw images are served/],
    [
      "another backend",
      `disk = [ "backend=storage,vdev=xvda,target=${img}" ]`,
      /backend=storage: a driver domain's devices are fixed at its launch/,
    ],
    ["a PV (xen) disk", `disk = [ "specification=xen,vdev=xvda,target=${img}" ]`, /there is no blkback/],
    ["a cdrom", `disk = [ "vdev=hdc,cdrom,target=${img}" ]`, /cdrom devices are not supported/],
    ["an unknown disk key", `disk = [ "vdev=xvda,colour=red,target=${img}" ]`, /unknown key 'colour'/],
    [
      "a disk's grant_usage other than 0 or 1",
      `disk = [ "${img},raw,xvda,rw,grant_usage=yes" ]`,
      /f\.cfg:4: disk '.*': grant_usage 'yes' is neither 0 nor 1/,
    ],
    [
      "a vif's grant_usage other than 0 or 1",
      `vif = [ "grant_usage=2" ]`,
      /f\.cfg:4: vif 'grant_usage=2': grant_usage '2' is neither 0 nor 1/,
    ],
    [
      "a virtio grant_usage other than 0 or 1",
      `virtio = [ "type=virtio,device4,grant_usage=true" ]`,
      /f\.cfg:4: virtio '.*': grant_usage 'true' is neither 0 nor 1/,
    ],
    ["an empty grant_usage", `virtio = [ "type=virtio,device4,grant_usage=" ]`, /grant_usage '' is neither 0 nor 1/],
    ["virtio without a type", `virtio = [ "transport=mmio" ]`, /no type/],
    ["a bad mac", `vif = [ "mac=00:16:3e" ]`, /mac '00:16:3e' is not a unicast xx:xx:xx:xx:xx:xx/],
    ["a group mac", `vif = [ "mac=01:16:3e:00:00:01" ]`, /is not a unicast/],
    ["an mtu out of range", `vif = [ "mtu=9000" ]`, /mtu '9000' is out of range 68\.\.1500/],
    ["another bridge", `vif = [ "bridge=xenbr1" ]`, /the host has one switch, xenbr0/],
  ];
  for (const [name, line, message] of refusals) {
    it(`refuses ${name} with the file and line`, () => {
      assert.throws(
        () => domainConfigFromText(`name = "x"\nkernel = "hello.elf"\nmemory = 4\n${line}\n`, join(dir, "f.cfg")),
        message,
      );
    });
  }
});
