#!/usr/bin/env node
// The package layering rule, as code (Biome cannot say it). Dependencies point one way:
// toolstack -> hypervisor -> hw; backends reach the hypervisor only through its public client
// API; the toolstack may start backends (service and driver domains) through their launchers;
// guests produce images and import nothing. A package is entered only through its public
// face (src/index.ts, imported as "@xenon/<name>"), so internals can change without breaking
// other packages.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";

// XENON_LINT_ROOT lets the rule's own tests point it at a scratch tree.
const root = resolve(process.env.XENON_LINT_ROOT ?? new URL("..", import.meta.url).pathname);
const allowed = {
  hw: [],
  hypervisor: ["hw"],
  backends: ["hypervisor"],
  guests: [],
  // toolstack -> backends: the toolstack starts service and driver domains (xenstored, backends);
  // it uses their launchers, not their internals.
  toolstack: ["hypervisor", "hw", "guests", "backends"],
  tests: ["hw", "hypervisor", "backends", "guests", "toolstack"],
};
const why = {
  hw: "hw is emulated hardware with no policy; it must not know about the hypervisor or anything above it",
  hypervisor: "the hypervisor core sits on hw only; toolstacks and backends are its clients, never its dependencies",
  backends:
    "backends run in driver domains and may use only the hypervisor's public client API, as a real driver domain only has hypercalls",
  guests: "guests only produce images; nothing at run time may depend on host code",
  toolstack:
    "the toolstack drives the hypervisor and starts service and driver domains (xenstored, backends); it uses their launchers, not their internals",
  tests: "",
};

const sources = [];
const walk = (dir, owner) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && e.name !== "dist") walk(p, owner);
    } else if (/\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts")) sources.push({ file: p, owner });
  }
};
for (const pkg of Object.keys(allowed)) {
  const src = pkg === "tests" ? join(root, "tests", "src") : join(root, "packages", pkg, "src");
  try {
    walk(src, pkg);
  } catch {
    /* package without sources yet */
  }
}

const importRe = /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
const problems = [];
for (const { file, owner } of sources) {
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    const line = text.slice(0, m.index).split("\n").length;
    const where = `${relative(root, file)}:${line}`;
    const pkgImport = /^@xenon\/([^/]+)(\/.*)?$/.exec(spec);
    if (pkgImport) {
      const [, target, deep] = pkgImport;
      if (target === owner) problems.push(`${where}: imports its own package by name; use a relative path`);
      else if (deep)
        problems.push(
          `${where}: "${spec}" reaches inside @xenon/${target}; import "@xenon/${target}" (its public face, src/index.ts) so its internals stay free to change`,
        );
      else if (!allowed[owner].includes(target))
        problems.push(`${where}: ${owner} may not import @xenon/${target}: ${why[owner]}`);
    } else if (spec.startsWith(".")) {
      const target = resolve(join(file, ".."), spec);
      const base = owner === "tests" ? join(root, "tests") : join(root, "packages", owner);
      if (!target.startsWith(base + sep))
        problems.push(
          `${where}: relative import "${spec}" leaves package ${owner}; import the other package's public face instead`,
        );
    }
  }
}
if (problems.length) {
  for (const p of problems) console.error(`layering: ${p}`);
  console.error(`layering: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`layering: ${sources.length} files checked, dependencies point one way`);
