/**
 * Guest memory by foreign copy, for a device without grants (grant_usage=0) served by a privileged
 * driver domain that shares no memory with the core (process mode): copy_memory.ts over the
 * guest's own frame numbers, through the core's privileged foreign copy (the copy a dom0 backend
 * makes through a gmfn_foreign mapping). An unprivileged backend gets -EPERM for every page, as
 * with ForeignMapMemory.
 */
import { Errno } from "@xenon/hypervisor";
import { type CopyFromSeg, CopyMemory, type CopyToSeg } from "./copy_memory.js";
import { errnoName, foreignRange } from "./foreign_map_memory.js";

/** What this needs of a HypercallClient. */
export interface ForeignCopier {
  copyFromForeign(dom: number, segs: readonly CopyFromSeg[]): Promise<Array<Uint8Array | number>>;
  copyToForeign(dom: number, segs: readonly CopyToSeg[]): Promise<number[]>;
}

export class ForeignCopyMemory extends CopyMemory {
  constructor(client: ForeignCopier, domid: number) {
    const refused = (gfn: number, st: number) =>
      `foreign copy of d${domid} gfn 0x${gfn.toString(16)} refused: ${errnoName(st)}${st === -Errno.EPERM ? " (this backend is not privileged)" : ""}`;
    super({
      domid,
      range: foreignRange,
      copyFrom: (segs) => client.copyFromForeign(domid, segs),
      copyTo: (segs) => client.copyToForeign(domid, segs),
      goneStatus: -Errno.ESRCH,
      refusal: refused,
      notWritable: refused,
    });
  }
}
