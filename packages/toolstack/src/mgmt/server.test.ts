import assert from "node:assert/strict";
import type { NetworkInterfaceInfo } from "node:os";
import { describe, it } from "node:test";
import { advertisedAddress } from "./server.js";

const nic = (address: string, family: "IPv4" | "IPv6", internal = false): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: "", mac: "00:00:00:00:00:00", cidr: null }) as NetworkInterfaceInfo;

describe("the management URL's address", () => {
  const ifaces = {
    lo: [nic("127.0.0.1", "IPv4", true), nic("::1", "IPv6", true)],
    eth0: [nic("fe80::1", "IPv6"), nic("10.1.2.3", "IPv4"), nic("2001:db8::7", "IPv6")],
  };
  it("a listener on a wildcard is given out at the machine's first external address of its family", () => {
    assert.equal(advertisedAddress("0.0.0.0", ifaces), "10.1.2.3");
    assert.equal(advertisedAddress("::", ifaces), "2001:db8::7", "not the link-local one");
  });
  it("a named address is given out as it is; a machine with loopback only gives loopback", () => {
    assert.equal(advertisedAddress("127.0.0.1", ifaces), "127.0.0.1");
    assert.equal(advertisedAddress("10.9.9.9", ifaces), "10.9.9.9");
    assert.equal(advertisedAddress("0.0.0.0", { lo: ifaces.lo }), "127.0.0.1");
    assert.equal(advertisedAddress("::", { lo: ifaces.lo }), "::1");
  });
});
