import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { domainConfigFromText } from "../xlcfg/domain_config.js";
import { absoluteDiskSpec, parseDiskSpec, parseVifSpec, parseVirtioSpec } from "./device.js";

const dir = mkdtempSync(join(tmpdir(), "xenon-device-spec-"));
const img = join(dir, "disk.img");
writeFileSync(img, new Uint8Array(4096));

describe("xl.cfg device specs", () => {
  it("disk: positional and key=value forms are the same disk; target= swallows commas", () => {
    const want = { kind: "blk", path: img, readOnly: false };
    assert.deepEqual(parseDiskSpec(`${img},raw,xvda,rw`), want);
    assert.deepEqual(parseDiskSpec(`format=raw, vdev=xvda, access=rw, target=${img}`), want);
    assert.deepEqual(parseDiskSpec("disk.img,,xvda,ro", dir), { ...want, readOnly: true });
    const odd = join(dir, "a,b.img");
    writeFileSync(odd, new Uint8Array(512));
    assert.deepEqual(parseDiskSpec(`vdev=xvdb,target=${odd}`), { kind: "blk", path: odd, readOnly: false });
    assert.equal(
      absoluteDiskSpec("disk.img,raw,xvda,r", dir),
      `format=raw,vdev=xvda,access=ro,specification=virtio,target=${img}`,
    );
  });

  it("vif: a MAC (lower-cased) or none (the host gives Xen's), the switch xenbr0", () => {
    assert.deepEqual(parseVifSpec("mac=00:16:3E:AB:00:01,bridge=xenbr0"), { kind: "net", mac: "00:16:3e:ab:00:01" });
    assert.deepEqual(parseVifSpec("mtu=1400"), { kind: "net", mac: "", mtu: 1400 });
  });

  it("virtio: type virtio,device<N> in hex, the comma inside it tolerated", () => {
    assert.deepEqual(parseVirtioSpec("type=virtio,device4"), { kind: "rng" });
    assert.deepEqual(parseVirtioSpec("type=virtio,device3,grant_usage=1"), { kind: "console" });
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
    ["virtio without grants", `virtio = [ "type=virtio,device4,grant_usage=0" ]`, /grant_usage=0/],
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
