/**
 * xl's CPULIST syntax (xl.cfg(5) `cpus=`, `xl vcpu-pin`): "all", "3", "0-3", "0-3,5,^1" — ranges
 * and single pCPUs joined by commas, `^` removes. Items are applied left to right, so "all,^0" is
 * every pCPU but 0. NUMA forms ("nodes:…") are refused: the host has one node.
 */
export class CpuListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CpuListError";
  }
}

/** The pCPU ids `text` names among 0..nrCpus-1, sorted. Throws CpuListError. */
export function parseCpuList(text: string, nrCpus: number): number[] {
  const set = new Set<number>();
  const items = text.split(",").map((s) => s.trim());
  if (items.length === 0 || items.some((s) => s === "")) throw new CpuListError(`invalid cpu list '${text}'`);
  for (const raw of items) {
    const neg = raw.startsWith("^");
    const item = neg ? raw.slice(1) : raw;
    let ids: number[];
    if (item === "all") ids = Array.from({ length: nrCpus }, (_, i) => i);
    else if (/^nodes?:/.test(item)) throw new CpuListError(`'${raw}': NUMA node lists are not supported (one node)`);
    else {
      const m = /^(\d+)(?:-(\d+))?$/.exec(item);
      if (m === null) throw new CpuListError(`invalid cpu list '${text}' near '${raw}'`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo) throw new CpuListError(`invalid cpu range '${item}'`);
      if (hi >= nrCpus) throw new CpuListError(`cpu ${hi} does not exist (the host has ${nrCpus})`);
      ids = [];
      for (let c = lo; c <= hi; c++) ids.push(c);
    }
    for (const c of ids) {
      if (neg) set.delete(c);
      else set.add(c);
    }
  }
  return [...set].sort((a, b) => a - b);
}

/** The inverse for output: "all" when every one of nrCpus pCPUs (unless nrCpus < 0), else ranges ("0-2,5"). */
export function formatCpuList(ids: readonly number[], nrCpus = -1): string {
  if (ids.length === 0) return "none";
  const s = [...new Set(ids)].sort((a, b) => a - b);
  if (nrCpus >= 0 && s.length === nrCpus && s[0] === 0 && s[s.length - 1] === nrCpus - 1) return "all";
  const parts: string[] = [];
  let i = 0;
  while (i < s.length) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}
