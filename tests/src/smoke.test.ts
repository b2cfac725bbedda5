import assert from "node:assert/strict";
import { test } from "node:test";
import { MachineMemory } from "@xenon/hw";

test("the workspace links packages by their public face", () => {
  const m = new MachineMemory({ bytes: 1 << 20 });
  assert.equal(m.totalFrames, 256);
});
