/**
 * An immutable set of pCPU ids (Xen's cpumask_t), used for hard and soft affinity.
 *
 * `CpuMask.ALL` is symbolic ("every pCPU, including ones added later"), like Xen's cpumask_all: an
 * affinity of ALL never has to be rewritten when pCPUs move between cpupools. Concrete masks keep
 * their ids sorted so that every iteration over a mask is deterministic.
 */
export class CpuMask {
  static readonly ALL = new CpuMask(true, []);
  static readonly NONE = new CpuMask(false, []);

  private constructor(
    readonly isAll: boolean,
    /** Sorted, unique; empty when isAll. */
    private readonly sorted: readonly number[],
  ) {}

  static of(...ids: number[]): CpuMask {
    return CpuMask.from(ids);
  }

  static from(ids: Iterable<number>): CpuMask {
    const uniq = [...new Set(ids)].sort((a, b) => a - b);
    for (const id of uniq) {
      if (!Number.isInteger(id) || id < 0) throw new RangeError(`CpuMask: bad pCPU id ${id}`);
    }
    return uniq.length === 0 ? CpuMask.NONE : new CpuMask(false, uniq);
  }

  has(id: number): boolean {
    return this.isAll || this.sorted.includes(id);
  }

  /** The members of this mask among `universe` (sorted ids), in universe order. */
  within(universe: readonly number[]): number[] {
    return this.isAll ? [...universe] : universe.filter((id) => this.sorted.includes(id));
  }

  /** True when some member of `universe` is in this mask. */
  intersects(universe: readonly number[]): boolean {
    return this.isAll ? universe.length > 0 : universe.some((id) => this.sorted.includes(id));
  }

  /** True when every member of `universe` is in this mask. */
  covers(universe: readonly number[]): boolean {
    return this.isAll || universe.every((id) => this.sorted.includes(id));
  }

  /** Concrete ids; undefined for ALL (which has no finite list until intersected with a universe). */
  ids(): readonly number[] | undefined {
    return this.isAll ? undefined : this.sorted;
  }

  equals(other: CpuMask): boolean {
    if (this.isAll || other.isAll) return this.isAll === other.isAll;
    return this.sorted.length === other.sorted.length && this.sorted.every((id, i) => other.sorted[i] === id);
  }

  /** Xen's cpulist format: "all", "" or e.g. "0-2,5". */
  toString(): string {
    if (this.isAll) return "all";
    const parts: string[] = [];
    let i = 0;
    while (i < this.sorted.length) {
      let j = i;
      while (j + 1 < this.sorted.length && this.sorted[j + 1] === this.sorted[j]! + 1) j++;
      parts.push(i === j ? `${this.sorted[i]}` : `${this.sorted[i]}-${this.sorted[j]}`);
      i = j + 1;
    }
    return parts.join(",");
  }
}
