import { FrameAllocator, MachineMemory } from "@xenon/hw";
import { createScheduler, Hypervisor, Machine } from "@xenon/hypervisor";

/** A started machine with no domains (a migration's destination): one pCPU, credit2, `mib` of RAM. */
export function emptyHost(mib = 64): Machine {
  const memory = new MachineMemory({ bytes: mib * 2 ** 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const m = new Machine({
    hv,
    timeMode: "host",
    pools: [
      { id: 0, name: "Pool-0", scheduler: createScheduler("credit2"), pcpus: [{ id: 0, cls: "big", speed: 1024 }] },
    ],
  });
  m.start();
  return m;
}

/** A console sink that splits bytes into lines pushed onto `out`. */
export function lineSink(out: string[]): (b: Uint8Array) => void {
  let partial = "";
  return (b) => {
    const parts = (partial + Buffer.from(b).toString("latin1")).split("\n");
    partial = parts.pop() ?? "";
    out.push(...parts);
  };
}
