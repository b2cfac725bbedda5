/**
 * The xl.cfg syntax (libxlutil's config language, xl.cfg(5)): `KEY = VALUE` settings, one per
 * line or separated by `;`; values are strings ('single' taken literally, "double" with C-style
 * escapes), numbers, or lists `[ v, v, ... ]` that may span lines, nest, and end with a trailing
 * comma; `#` starts a comment; `KEY += VALUE` appends to a string or list set earlier.
 *
 * Values keep their source text (as libxlutil does): the reader of a key decides whether it is a
 * number (`getNumber`) or a string. Errors carry the file and line and are worded like xl's
 * (`FILE:LINE: config parsing error near `TOKEN': REASON`).
 */

export type XlCfgValue =
  | { readonly kind: "string"; readonly text: string; readonly line: number }
  | { readonly kind: "number"; readonly text: string; readonly line: number }
  | { readonly kind: "list"; readonly items: readonly XlCfgValue[]; readonly line: number };

export class XlCfgError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = "XlCfgError";
  }
}

type Tok =
  | { t: "id"; v: string; line: number }
  | { t: "string"; v: string; line: number }
  | { t: "number"; v: string; line: number }
  | { t: "nl"; line: number }
  | { t: "eof"; line: number }
  | { t: "="; line: number }
  | { t: "+="; line: number }
  | { t: "["; line: number }
  | { t: "]"; line: number }
  | { t: ","; line: number }
  | { t: ";"; line: number };

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
};

function tokText(tok: Tok): string {
  switch (tok.t) {
    case "id":
    case "number":
      return tok.v;
    case "string":
      return JSON.stringify(tok.v);
    case "nl":
      return "newline";
    case "eof":
      return "end of file";
    default:
      return tok.t;
  }
}

function lex(src: string, file: string): Tok[] {
  const out: Tok[] = [];
  let line = 1;
  let i = 0;
  function fail(near: string, why: string): never {
    throw new XlCfgError(file, line, `config parsing error near \`${near}': ${why}`);
  }
  while (i < src.length) {
    const c = src[i]!;
    if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "\n") {
      out.push({ t: "nl", line });
      line++;
      i++;
    } else if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "=" || c === "[" || c === "]" || c === "," || c === ";") {
      out.push({ t: c, line });
      i++;
    } else if (c === "+" && src[i + 1] === "=") {
      out.push({ t: "+=", line });
      i += 2;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i, i + 256))!;
      out.push({ t: "id", v: m[0], line });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      // libxlutil takes a number's whole run of word characters; the reader checks its form.
      const m = /^[0-9][0-9A-Za-z_.]*/.exec(src.slice(i, i + 256))!;
      out.push({ t: "number", v: m[0], line });
      i += m[0].length;
    } else if (c === "'" || c === '"') {
      const start = line;
      let v = "";
      i++;
      for (;;) {
        if (i >= src.length || src[i] === "\n") fail(`${c}${v}`, "unterminated string");
        const ch = src[i]!;
        if (ch === c) {
          i++;
          break;
        }
        if (ch === "\\" && c === '"') {
          const e = src[i + 1];
          if (e === undefined || e === "\n") fail(`${c}${v}`, "unterminated string");
          if (e === "x") {
            const hex = /^[0-9A-Fa-f]{1,2}/.exec(src.slice(i + 2, i + 4));
            if (hex === null) fail(`\\x`, "bad \\x escape in string");
            v += String.fromCharCode(Number.parseInt(hex[0], 16));
            i += 2 + hex[0].length;
            continue;
          }
          if (/[0-7]/.test(e)) {
            const oct = /^[0-7]{1,3}/.exec(src.slice(i + 1, i + 4))!;
            v += String.fromCharCode(Number.parseInt(oct[0], 8) & 0xff);
            i += 1 + oct[0].length;
            continue;
          }
          const r = ESCAPES[e];
          if (r === undefined) fail(`\\${e}`, "unknown escape in string");
          v += r;
          i += 2;
          continue;
        }
        if (ch === "\0") fail(`${c}${v}`, "NUL byte in string");
        v += ch;
        i++;
      }
      out.push({ t: "string", v, line: start });
    } else {
      const shown = c === "\0" ? "\\0" : c;
      fail(shown, "syntax error");
    }
  }
  out.push({ t: "eof", line });
  return out;
}

/** A parsed xl.cfg: the settings in file order (a key set twice keeps its last value). */
export class XlCfg {
  private readonly map = new Map<string, XlCfgValue>();

  constructor(readonly file: string) {}

  set(key: string, value: XlCfgValue): void {
    this.map.delete(key);
    this.map.set(key, value);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  get(key: string): XlCfgValue | undefined {
    return this.map.get(key);
  }

  keys(): string[] {
    return [...this.map.keys()];
  }

  private fail(v: XlCfgValue, why: string): never {
    throw new XlCfgError(this.file, v.line, why);
  }

  /** A single string (numbers are accepted as their text, as libxlutil does). */
  getString(key: string): string | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    if (v.kind === "list") this.fail(v, `parameter \`${key}' is a list but should be a single value`);
    return v.text;
  }

  /** An integer: decimal, 0x hex or 0 octal, like strtol(…, 0). */
  getNumber(key: string): number | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    if (v.kind === "list") this.fail(v, `parameter \`${key}' is a list but should be a single value`);
    const n = parseCfgInteger(v.text);
    if (n === null) this.fail(v, `parameter \`${key}' is not a valid number`);
    return n;
  }

  /** 0 or 1 (any number; non-zero = true). */
  getBool(key: string): boolean | undefined {
    const n = this.getNumber(key);
    return n === undefined ? undefined : n !== 0;
  }

  /** A list of strings (a single string is a list of one, as xl's cpus= allows). */
  getStringList(key: string, allowSingle = false): string[] | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    if (v.kind !== "list") {
      if (allowSingle) return [v.text];
      this.fail(v, `parameter \`${key}' is a single value but should be a list`);
    }
    return v.items.map((it) => {
      if (it.kind === "list") this.fail(it, `parameter \`${key}' has a nested list where a string was expected`);
      return it.text;
    });
  }
}

/** strtol(s, NULL, 0) with the whole string consumed; null if it is not an integer. */
export function parseCfgInteger(text: string): number | null {
  const t = text.trim();
  let n: number;
  if (/^[+-]?0[xX][0-9A-Fa-f]+$/.test(t)) n = Number.parseInt(t, 16);
  else if (/^[+-]?0[0-7]+$/.test(t)) n = Number.parseInt(t, 8);
  else if (/^[+-]?(0|[1-9][0-9]*)$/.test(t)) n = Number.parseInt(t, 10);
  else return null;
  return Number.isSafeInteger(n) ? n : null;
}

/** Parses xl.cfg text; `file` names it in errors. Throws XlCfgError. */
export function parseXlCfg(src: string, file = "config", into?: XlCfg): XlCfg {
  const toks = lex(src, file);
  const cfg = into ?? new XlCfg(file);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  function fail(tok: Tok, why = "syntax error"): never {
    throw new XlCfgError(file, tok.line, `config parsing error near \`${tokText(tok)}': ${why}`);
  }
  const skipNl = () => {
    while (peek().t === "nl") p++;
  };
  const value = (depth: number): XlCfgValue => {
    const tok = next();
    if (tok.t === "string") return { kind: "string", text: tok.v, line: tok.line };
    if (tok.t === "number") return { kind: "number", text: tok.v, line: tok.line };
    if (tok.t !== "[") return fail(tok, tok.t === "nl" || tok.t === "eof" ? "missing value" : "syntax error");
    if (depth >= 8) fail(tok, "lists nested too deeply");
    const items: XlCfgValue[] = [];
    // Inside brackets newlines are plain white space: a list continues over lines.
    for (;;) {
      skipNl();
      const t = peek();
      if (t.t === "]") {
        p++;
        return { kind: "list", items, line: tok.line };
      }
      if (t.t === "eof") fail(t, "unterminated list (missing `]')");
      if (t.t === ",") fail(t, items.length === 0 ? "list starts with a comma" : "empty list element");
      items.push(value(depth + 1));
      skipNl();
      const sep = peek();
      if (sep.t === ",") {
        p++;
        continue;
      }
      if (sep.t === "]") continue;
      if (sep.t === "eof") fail(sep, "unterminated list (missing `]')");
      fail(sep, "missing comma between list elements");
    }
  };
  for (;;) {
    const tok = next();
    if (tok.t === "eof") break;
    if (tok.t === "nl" || tok.t === ";") continue;
    if (tok.t !== "id") fail(tok, tok.t === "number" ? "a setting must start with a name" : "syntax error");
    const op = next();
    if (op.t !== "=" && op.t !== "+=") fail(op, "expected `=' after the setting name");
    const v = value(0);
    const end = next();
    if (end.t !== "nl" && end.t !== ";" && end.t !== "eof") fail(end, "expected end of line after the value");
    if (end.t === "eof") p--;
    if (op.t === "=") {
      cfg.set(tok.v, v);
      continue;
    }
    const prev = cfg.get(tok.v);
    if (prev === undefined) cfg.set(tok.v, v);
    else if (prev.kind === "list" && v.kind === "list")
      cfg.set(tok.v, { kind: "list", items: [...prev.items, ...v.items], line: prev.line });
    else if (prev.kind !== "list" && v.kind !== "list")
      cfg.set(tok.v, { kind: "string", text: prev.text + v.text, line: prev.line });
    else fail(op, `\`+=' mixes a list and a single value for \`${tok.v}'`);
  }
  return cfg;
}
