/**
 * The management endpoint's pool ops (PROTOCOL.md): the members, a pool-wide domain list asked
 * of every member over its link, and xl migrate with progress events.
 */
import { LibxlError } from "../libxl/errors.js";
import type { Libxl } from "../libxl/libxl.js";
import type { DomainListEntry } from "../libxl/types.js";
import type { ExtraOp } from "../mgmt/server.js";
import type { MemberInfo, PoolAgent } from "./agent.js";
import type { PoolMigrations } from "./migration.js";

/** How long a pool-wide list waits for a member before showing it as unreachable. */
const LIST_TIMEOUT_MS = 5000;

export interface PoolHostDomains {
  readonly host: string;
  readonly url: string;
  readonly self: boolean;
  /** Its domains, or why they could not be had. */
  readonly domains?: DomainListEntry[];
  readonly error?: string;
}

type Args = Readonly<Record<string, unknown>>;

function optU32(a: Args, k: string): number | undefined {
  const v = a[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new LibxlError("EINVAL", `argument '${k}' must be a u32`);
  return v;
}

export function poolOps(
  lx: Libxl,
  ref: { readonly agent: PoolAgent | null; readonly migrations: PoolMigrations | null },
): Record<string, ExtraOp> {
  const self = (): MemberInfo => ({ host: lx.ctx.hostName, url: "", self: true, silentMs: 0 });
  return {
    "pool.members": () => ref.agent?.members() ?? [self()],
    "pool.list": async (): Promise<PoolHostDomains[]> => {
      const agent = ref.agent;
      if (agent === null) return [{ ...self(), domains: lx.list() }];
      return Promise.all(
        agent.members().map(async (m): Promise<PoolHostDomains> => {
          const base = { host: m.host, url: m.url, self: m.self };
          if (m.self) return { ...base, domains: lx.list() };
          try {
            const domains = await agent.link(m.host).request<DomainListEntry[]>("domain.list", {}, LIST_TIMEOUT_MS);
            return { ...base, domains };
          } catch (e) {
            return { ...base, error: (e as Error).message };
          }
        }),
      );
    },
    "domain.migrate": async (a, event) => {
      const m = ref.migrations;
      if (m === null) throw new LibxlError("EINVAL", "this host is in no pool (start it with --pool-secret-file)");
      const dom = a.dom;
      if (typeof dom !== "string" && typeof dom !== "number")
        throw new LibxlError("EINVAL", "argument 'dom' must be a domain name or id");
      if (typeof a.host !== "string") throw new LibxlError("EINVAL", "argument 'host' must be a string");
      const cut = optU32(a, "testCutAfterBytes");
      const delay = optU32(a, "testBatchDelayMs");
      const maxRounds = optU32(a, "maxRounds");
      const targetDirty = optU32(a, "targetDirty");
      const r = await m.migrate(dom, a.host, {
        progress: (p) => event({ ...p }),
        ...(cut !== undefined ? { testCutAfterBytes: cut } : {}),
        ...(delay !== undefined ? { testBatchDelayMs: delay } : {}),
        ...(maxRounds !== undefined ? { maxRounds } : {}),
        ...(targetDirty !== undefined ? { targetDirty } : {}),
      });
      return { ...r, dirtyPerRound: [...r.dirtyPerRound] };
    },
  };
}
