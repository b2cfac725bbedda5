import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { createVcpuState, FrameAllocator, MachineMemory } from "@xenon/hw";
import { buildDomainMemory, initBootVcpuState } from "../domain_build.js";
import { p2mPoolPagesFor } from "../domain_table.js";
import { HypercallClient } from "../hypercall/port/client.js";
import { servePort } from "../hypercall/port/server.js";
import { Hypervisor } from "../hypervisor.js";
import { Machine } from "../machine.js";
import { GUEST_RAM_BASE } from "../p2m/types.js";
import {
  BUF_IOREQ_BASE,
  HVM_IOREQSRV_BUFIOREQ_ATOMIC,
  IOREQ_BUFFER_SLOT_NUM,
  IOREQ_STATE_MASK,
  IoreqState,
  parseBufIoreqWord,
  XEN_DMOP_IO_RANGE_MEMORY,
  XENON_DMOP_IO_RANGE_MEMORY_POSTED,
} from "../public/ioreq.js";
import { createScheduler } from "../sched/cpupool.js";

// RV32 encodings for the few instructions the guest needs.
const lui = (rd: number, imm20: number) => ((imm20 << 12) | (rd << 7) | 0x37) >>> 0;
const itype = (op: number, f3: number, rd: number, rs1: number, imm: number) =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const lw = (rd: number, rs1: number, imm: number) => itype(0x03, 2, rd, rs1, imm);
const lb = (rd: number, rs1: number, imm: number) => itype(0x03, 0, rd, rs1, imm);
const addi = (rd: number, rs1: number, imm: number) => itype(0x13, 0, rd, rs1, imm);
const sw = (rs2: number, rs1: number, imm: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const EBREAK = 0x00100073;
const A0 = 10;
const A1 = 11;
const A5 = 15;
const WIN = 0x0200_0000;

describe("IOREQ through the machine", () => {
  it("a guest's loads and stores in a served window reach a TypeScript device model and resume with its answers", async () => {
    const memory = new MachineMemory({ bytes: 64 << 20 });
    const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
    const machine = new Machine({
      hv,
      timeMode: "host",
      pools: [
        { id: 0, name: "Pool-0", scheduler: createScheduler("credit2"), pcpus: [{ id: 0, cls: "big", speed: 1024 }] },
      ],
    });
    try {
      const guest = hv.domains.create({ name: "guest", maxVcpus: 1, maxPages: 64, p2mPoolPages: p2mPoolPagesFor(64) });
      const dm = hv.domains.create({ name: "dm", maxVcpus: 1, maxPages: 0, p2mPoolPages: p2mPoolPagesFor(0) });
      assert.ok(typeof guest === "object" && typeof dm === "object");
      const code = [
        lui(A5, WIN >>> 12),
        lw(A0, A5, 0x70), // device answers 41
        addi(A0, A0, 1),
        sw(A0, A5, 0x50), // posted: 42 through the buffered ring
        lb(A1, A5, 0x74), // device answers 0x80: sign-extended to -128
        sw(A1, A5, 0x78), // synchronous write of -128
        EBREAK,
      ];
      const bytes = new Uint8Array(new Uint32Array(code).buffer);
      const placement = buildDomainMemory(
        guest,
        {
          entry: GUEST_RAM_BASE,
          flags: 0,
          segments: [{ vaddr: GUEST_RAM_BASE, paddr: GUEST_RAM_BASE, data: bytes, memsz: 4096, flags: 5 }],
        },
        64 * 1024,
      );

      // The device model: a TypeScript domain on a hypercall port.
      assert.equal(
        hv.hypercalls.domctlSetTarget(guest.domid, dm.domid, guest.domid),
        -1,
        "an unprivileged caller cannot name device models",
      );
      hv.ioreq.setDmTarget(dm.domid, guest.domid, true);
      const { port1, port2 } = new MessageChannel();
      servePort(hv, dm.domid, port1);
      const c = await HypercallClient.connect(port2);
      const id = await c.createIoreqServer(guest.domid, HVM_IOREQSRV_BUFIOREQ_ATOMIC);
      assert.ok(id >= 0);
      assert.equal(await c.mapIoRangeToIoreqServer(guest.domid, id, XEN_DMOP_IO_RANGE_MEMORY, WIN, WIN + 0x1ff), 0);
      assert.equal(
        await c.mapIoRangeToIoreqServer(guest.domid, id, XENON_DMOP_IO_RANGE_MEMORY_POSTED, WIN + 0x50, WIN + 0x53),
        0,
      );
      const info = await c.getIoreqServerInfo(guest.domid, id);
      assert.ok(typeof info === "object");
      const page = await c.acquireIoreqServerPage(guest.domid, id, 1);
      const buf = await c.acquireIoreqServerPage(guest.domid, id, 0);
      assert.ok(page instanceof Uint8Array && buf instanceof Uint8Array);
      const seen: string[] = [];
      const dv = new DataView(page.buffer, page.byteOffset, 4096);
      const bdv = new DataView(buf.buffer, buf.byteOffset, 4096);
      const drainBuffered = () => {
        for (;;) {
          const rp = bdv.getUint32(0, true);
          if (rp === bdv.getUint32(4, true)) return;
          const o = BUF_IOREQ_BASE + (rp % IOREQ_BUFFER_SLOT_NUM) * 8;
          const r = parseBufIoreqWord(bdv.getUint32(o, true));
          seen.push(`posted ${r.addr20.toString(16)}=${bdv.getUint32(o + 4, true)}`);
          bdv.setUint32(0, rp + 1, true);
        }
      };
      const vcpuPort = await c.evtchnBindInterdomain(guest.domid, info.vcpuPorts[0]!);
      const bufPort = await c.evtchnBindInterdomain(guest.domid, info.bufioreqPort);
      c.bind(bufPort, drainBuffered);
      c.bind(vcpuPort, () => {
        drainBuffered(); // posted writes come before a later synchronous request
        const st = page[30]! & IOREQ_STATE_MASK;
        if (st !== IoreqState.READY) return;
        const addr = dv.getUint32(0, true);
        const read = ((page[30]! >> 5) & 1) === 1;
        if (read) {
          const v = addr === WIN + 0x70 ? 41 : 0x80;
          dv.setUint32(8, v, true);
          seen.push(`read ${(addr - WIN).toString(16)}`);
        } else seen.push(`write ${(addr - WIN).toString(16)}=${dv.getUint32(8, true)}/${dv.getUint32(20, true)}`);
        page[30] = (page[30]! & ~IOREQ_STATE_MASK) | IoreqState.IORESP_READY;
        void c.evtchnSend(vcpuPort);
      });
      const loop = c.eventLoop();
      assert.equal(await c.setIoreqServerState(guest.domid, id, true), 0);

      const state = createVcpuState();
      initBootVcpuState(state, placement, 0);
      machine.addDomain(guest, 0, state);
      const ends = await machine.run();
      assert.deepEqual(seen, ["read 70", "posted 50=42", "read 74", "write 78=4294967168/4"]);
      assert.equal(ends.length, 1);
      assert.match(ends[0]!.detail ?? "", /ebreak/);
      c.close();
      await loop;
    } finally {
      await machine.close();
    }
  });
});
