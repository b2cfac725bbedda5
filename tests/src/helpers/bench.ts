/** What every `pnpm bench <name>` shares: its command line, its log, medians. */
export interface BenchCli {
  /** --json: print one JSON object and nothing else on stdout. */
  readonly json: boolean;
  /** A numeric option `--name N`, or its default. */
  num(name: string, dflt: number): number;
  /** A progress line (suppressed under --json). */
  log(message: string): void;
}

export function benchCli(argv: readonly string[] = process.argv.slice(2)): BenchCli {
  const json = argv.includes("--json");
  return {
    json,
    num(name, dflt) {
      const i = argv.indexOf(name);
      return i >= 0 ? Number(argv[i + 1]) : dflt;
    },
    log(message) {
      if (!json) process.stdout.write(`${message}\n`);
    },
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
