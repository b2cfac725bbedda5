/**
 * Shared fixtures for this package's unit tests (not exported from index.ts): a small host, a
 * hypervisor whose hooks record what they were told, and domains built the way a toolstack would.
 */
import assert from "node:assert/strict";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import type { Domain, DomainCreateConfig } from "./domain.js";
import { Hypervisor } from "./hypervisor.js";
import { populateRange } from "./memory.js";
import { GUEST_RAM_BASE_GFN } from "./p2m/types.js";

export interface Host {
  readonly memory: MachineMemory;
  readonly allocator: FrameAllocator;
  readonly hv: Hypervisor;
  readonly upcalls: Array<[number, number]>;
  readonly pendingPorts: Array<[number, number, number]>;
  readonly shutdowns: Array<[number, number, string | null]>;
  readonly released: number[];
}

export function makeHost(frames = 8192): Host {
  const memory = new MachineMemory({ bytes: frames * 4096 });
  const allocator = new FrameAllocator(memory);
  const upcalls: Array<[number, number]> = [];
  const pendingPorts: Array<[number, number, number]> = [];
  const shutdowns: Array<[number, number, string | null]> = [];
  const released: number[] = [];
  const hv = new Hypervisor({
    memory,
    allocator,
    hooks: {
      upcall: (d, v) => upcalls.push([d, v]),
      portPending: (d, v, p) => pendingPorts.push([d, v, p]),
      shutdown: (d, r, a) => shutdowns.push([d, r, a]),
      domainReleased: (d) => released.push(d),
    },
  });
  return { memory, allocator, hv, upcalls, pendingPorts, shutdowns, released };
}

/** A domain with `ramPages` of RAM populated at the guest RAM base (0x80000000). */
export function makeDomain(hv: Hypervisor, over: Partial<DomainCreateConfig> = {}, ramPages = 16): Domain {
  const d = hv.domains.create({ maxVcpus: 2, maxPages: 256, p2mPoolPages: 16, ...over });
  if (typeof d === "number") throw new Error(`create failed: ${d}`);
  if (ramPages > 0) assert.equal(populateRange(d, GUEST_RAM_BASE_GFN, ramPages), 0);
  return d;
}

/** Guest-physical address of RAM page i. */
export function ramGpa(i: number, offset = 0): number {
  return (GUEST_RAM_BASE_GFN + i) * 4096 + offset;
}

/** A deterministic pseudo-random generator (xorshift32) for fuzz-style tests. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
