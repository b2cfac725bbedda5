/**
 * Guest memory through grant copy (any mode, and the only one a process-mode driver domain has for
 * granted devices): copy_memory.ts over grant references, GNTTABOP_copy one segment per page. Same
 * interface and same checks as the map implementation.
 */
import { Gntst } from "@xenon/hypervisor";
import { type CopyFromSeg, CopyMemory, type CopyToSeg } from "./copy_memory.js";
import { fmtGntst, grantRange } from "./dma.js";

/** What this needs of a HypercallClient. */
export interface GrantCopier {
  copyFromGrant(dom: number, ref: number, offset: number, len: number): Promise<Uint8Array | number>;
  copyToGrant(dom: number, ref: number, offset: number, bytes: Uint8Array): Promise<number>;
  /** Several segments in one call, when the copier has it (one message instead of one per page). */
  copyFromGrants?(dom: number, segs: readonly CopyFromSeg[]): Promise<Array<Uint8Array | number>>;
  copyToGrants?(dom: number, segs: readonly CopyToSeg[]): Promise<number[]>;
}

export class GrantCopyMemory extends CopyMemory {
  constructor(client: GrantCopier, domid: number) {
    const many = client.copyFromGrants?.bind(client);
    const manyTo = client.copyToGrants?.bind(client);
    super({
      domid,
      range(hi, lo, len) {
        const r = grantRange(hi, lo, len);
        return typeof r === "string" ? r : { base: r.gref, first: r.first, pages: r.pages };
      },
      // One call with every segment when the copier can, else one per segment (pipelined).
      copyFrom: (segs) =>
        many !== undefined && segs.length > 1
          ? many(domid, segs)
          : Promise.all(segs.map(([ref, at, n]) => client.copyFromGrant(domid, ref, at, n))),
      copyTo: (segs) =>
        manyTo !== undefined && segs.length > 1
          ? manyTo(domid, segs)
          : Promise.all(segs.map(([ref, at, b]) => client.copyToGrant(domid, ref, at, b))),
      goneStatus: Gntst.bad_domain,
      refusal: (ref, st) => `grant ${ref} of d${domid}: copy status ${fmtGntst(st)}`,
      notWritable: (ref, st) => `grant ${ref} of d${domid}: not writable (${st})`,
    });
  }
}
