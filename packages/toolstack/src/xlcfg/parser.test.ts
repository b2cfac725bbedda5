import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCfgInteger, parseXlCfg, XlCfgError } from "./parser.js";

test("settings: strings in both quotes, numbers, lists over lines with a trailing comma, comments", () => {
  const cfg = parseXlCfg(
    [
      "# a guest",
      "name = 'web'   # trailing comment",
      'kernel = "hello.elf"',
      "memory = 64; vcpus = 0x2",
      "cpus = [ '0-1',",
      '         "3",   # second vCPU',
      "       ]",
      "empty = []",
      "nested = [ [ 'a', 1 ], [ ] ]",
      "",
    ].join("\n"),
    "g.cfg",
  );
  assert.equal(cfg.getString("name"), "web");
  assert.equal(cfg.getString("kernel"), "hello.elf");
  assert.equal(cfg.getNumber("memory"), 64);
  assert.equal(cfg.getNumber("vcpus"), 2);
  assert.deepEqual(cfg.getStringList("cpus"), ["0-1", "3"]);
  assert.deepEqual(cfg.getStringList("empty"), []);
  const nested = cfg.get("nested");
  assert.equal(nested?.kind, "list");
  assert.equal(nested?.kind === "list" && nested.items.length, 2);
  assert.deepEqual(cfg.keys(), ["name", "kernel", "memory", "vcpus", "cpus", "empty", "nested"]);
  assert.equal(cfg.get("cpus")?.line, 5);
});

test("double-quoted escapes are decoded; single-quoted strings are literal", () => {
  const cfg = parseXlCfg(String.raw`a = "x\ty\n\"q\"\\\x41\101"` + "\n" + String.raw`b = 'x\ty'`);
  assert.equal(cfg.getString("a"), 'x\ty\n"q"\\AA');
  assert.equal(cfg.getString("b"), String.raw`x\ty`);
});

test("the last assignment wins; += appends to strings and lists", () => {
  const cfg = parseXlCfg("a = 1\na = 2\ns = 'ab'\ns += 'cd'\nl = [1]\nl += [2, 3]\nn += 'new'\n");
  assert.equal(cfg.getNumber("a"), 2);
  assert.equal(cfg.getString("s"), "abcd");
  assert.deepEqual(cfg.getStringList("l"), ["1", "2", "3"]);
  assert.equal(cfg.getString("n"), "new");
});

test("no final newline, CRLF line ends, empty file", () => {
  assert.equal(parseXlCfg("a = 1").getNumber("a"), 1);
  assert.equal(parseXlCfg("a = 1\r\nb = 'x'\r\n").getString("b"), "x");
  assert.deepEqual(parseXlCfg("").keys(), []);
  assert.deepEqual(parseXlCfg("# only a comment").keys(), []);
});

test("numbers: decimal, hex, octal; anything else is not a valid number", () => {
  assert.equal(parseCfgInteger("42"), 42);
  assert.equal(parseCfgInteger("0x1F"), 31);
  assert.equal(parseCfgInteger("010"), 8);
  assert.equal(parseCfgInteger("-3"), -3);
  for (const bad of ["", "4k", "0x", "1.5", "09", "99999999999999999999"])
    assert.equal(parseCfgInteger(bad), null, bad);
  assert.throws(() => parseXlCfg("m = 12abc").getNumber("m"), /config:1: parameter `m' is not a valid number/);
  assert.throws(() => parseXlCfg("m = 'x'").getNumber("m"), /parameter `m' is not a valid number/);
  assert.throws(() => parseXlCfg("m = [1]").getNumber("m"), /parameter `m' is a list but should be a single value/);
  assert.throws(() => parseXlCfg("m = 1").getStringList("m"), /is a single value but should be a list/);
  assert.deepEqual(parseXlCfg("m = '1'").getStringList("m", true), ["1"]);
  assert.throws(() => parseXlCfg("m = [[1]]").getStringList("m"), /nested list/);
});

/** Every malformed input: the message (xl's wording) and the line it names. */
const MALFORMED: ReadonlyArray<[string, string, RegExp]> = [
  ["missing =", "name 'x'\n", /^f:1: config parsing error near `"x"': expected `=' after the setting name$/],
  ["missing value", "name =\n", /^f:1: config parsing error near `newline': missing value$/],
  ["missing value at eof", "a = 1\nname =", /^f:2: config parsing error near `end of file': missing value$/],
  ["value without key", "= 3\n", /^f:1: config parsing error near `=': syntax error$/],
  ["number as key", "3 = 3\n", /^f:1: .*a setting must start with a name$/],
  ["string as key", "'a' = 3\n", /^f:1: config parsing error near `"a"': syntax error$/],
  ["two values", "a = 1 2\n", /^f:1: config parsing error near `2': expected end of line after the value$/],
  ["key after value", "a = 'x' b = 2\n", /^f:1: config parsing error near `b': expected end of line/],
  ["unterminated double string", 'a = "abc\nb = 1\n', /^f:1: config parsing error near `"abc': unterminated string$/],
  ["unterminated single string at eof", "a = 'abc", /^f:1: .*unterminated string$/],
  ["backslash at end of string", 'a = "abc\\', /^f:1: .*unterminated string$/],
  ["unknown escape", 'a = "\\q"\n', /^f:1: config parsing error near `\\q': unknown escape in string$/],
  ["bad hex escape", 'a = "\\xZZ"\n', /^f:1: .*bad \\x escape/],
  ["unterminated list", "a = [ 1,\n 2\n", /^f:3: config parsing error near `end of file': unterminated list/],
  ["missing comma", "a = [ 1 2 ]\n", /^f:1: config parsing error near `2': missing comma between list elements$/],
  ["missing comma over lines", "a = [ 'x'\n 'y' ]\n", /^f:2: config parsing error near `"y"': missing comma/],
  ["double comma", "a = [ 1,, 2 ]\n", /^f:1: config parsing error near `,': empty list element$/],
  ["leading comma", "a = [ , 1 ]\n", /^f:1: config parsing error near `,': list starts with a comma$/],
  ["stray ]", "a = ]\n", /^f:1: config parsing error near `]': syntax error$/],
  ["stray ] after value", "a = 1 ]\n", /^f:1: .*near `]': expected end of line/],
  ["stray , at top", "a = 1,\n", /^f:1: .*near `,': expected end of line/],
  ["bad character", "a = @\n", /^f:1: config parsing error near `@': syntax error$/],
  ["bad character in key", "na-me = 1\n", /^f:1: config parsing error near `-': syntax error$/],
  ["NUL byte", "a = 1\0\n", /^f:1: config parsing error near `\\0': syntax error$/],
  ["NUL in string", "a = 'x\0'\n", /^f:1: .*NUL byte in string$/],
  [
    "+= mixes kinds",
    "a = [1]\na += 'x'\n",
    /^f:2: config parsing error near `\+=': `\+=' mixes a list and a single value/,
  ],
  ["line number after lists", "a = [\n1,\n2,\n]\nb c\n", /^f:5: config parsing error near `c': expected `='/],
  ["too deep", `a = ${"[".repeat(20)}${"]".repeat(20)}\n`, /^f:1: .*lists nested too deeply$/],
  ["lone +", "a + 1\n", /^f:1: config parsing error near `\+': syntax error$/],
];

for (const [what, src, re] of MALFORMED) {
  test(`malformed: ${what}`, () => {
    assert.throws(
      () => parseXlCfg(src, "f"),
      (e: unknown) => {
        assert.ok(e instanceof XlCfgError, `not an XlCfgError: ${String(e)}`);
        assert.match(e.message, re);
        return true;
      },
    );
  });
}

test("every prefix of a valid file either parses or fails with an XlCfgError (never anything else)", () => {
  const src = "name = 'a b'\nmemory = 0x20 ; cpus = [ \"0-1\",\n '2', [ 3 ], ]\nextra = \"x\\ty\" # c\n";
  for (let i = 0; i <= src.length; i++) {
    try {
      parseXlCfg(src.slice(0, i), "p");
    } catch (e) {
      assert.ok(e instanceof XlCfgError, `prefix ${i}: ${String(e)}`);
    }
  }
});
