import { MAPTRACK_PER_FRAME } from "../public/grant_table.js";

/** How a grant is mapped for the mapping domain. */
export type MappingKind = "p2m" | "view";

/** Xen's maptrack entry: one handle held by the mapping domain. */
export interface MaptrackEntry {
  readonly granter: number;
  readonly ref: number;
  /** GNTMAP_* flags the map was made with. */
  readonly flags: number;
  readonly kind: MappingKind;
  /** For "p2m": the gfn in the mapper's physmap. -1 for "view". */
  readonly gfn: number;
  readonly mfn: number;
  readonly readonly: boolean;
}

/**
 * A mapping domain's maptrack table: handle -> mapping. Handles are small integers; a freed
 * handle is reused first (LIFO); the table holds at most maxFrames × 256 handles (Xen's maptrack frames of 16-byte
 * entries), beyond which map_grant_ref answers GNTST_no_space.
 */
export class Maptrack {
  private readonly entries: (MaptrackEntry | undefined)[] = [];
  private readonly freeHandles: number[] = [];
  private live = 0;
  readonly limit: number;

  constructor(maxFrames: number) {
    this.limit = maxFrames * MAPTRACK_PER_FRAME;
  }

  get count(): number {
    return this.live;
  }

  /** A new handle for `e`, or -1 when the table is full. */
  add(e: MaptrackEntry): number {
    let h = this.freeHandles.pop();
    if (h === undefined) {
      if (this.entries.length >= this.limit) return -1;
      h = this.entries.length;
      this.entries.push(undefined);
    }
    this.entries[h] = e;
    this.live++;
    return h;
  }

  get(handle: number): MaptrackEntry | undefined {
    if (!Number.isInteger(handle) || handle < 0 || handle >= this.entries.length) return undefined;
    return this.entries[handle];
  }

  remove(handle: number): void {
    if (this.get(handle) === undefined) return;
    this.entries[handle] = undefined;
    this.freeHandles.push(handle);
    this.live--;
  }

  /** Every live handle. */
  handles(): number[] {
    const out: number[] = [];
    this.entries.forEach((e, h) => {
      if (e !== undefined) out.push(h);
    });
    return out;
  }
}
