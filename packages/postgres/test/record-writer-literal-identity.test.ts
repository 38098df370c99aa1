/**
 * The record writer's `literal()` tells ASCII text from the rest by its UTF-8 length and skips
 * replacements that have nothing to replace (a CPU cut on the record path): its output must be
 * the previous implementation's, byte for byte, for any text. The previous one is kept here as
 * the reference.
 */
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { literal } from "../src/record-writer.js";

const NON_ASCII = /[\u0080-\u{10ffff}]/u;

/** `literal` as it was before the length test. */
function reference(text: string): string {
  if (!NON_ASCII.test(text)) return `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
  const hex = Buffer.from(text, "utf8").toString("hex");
  return `pg_catalog.convert_from(pg_catalog.decode('${hex}', 'hex'), 'UTF8')`;
}

const FIXTURES = join(import.meta.dirname, "../../core/test/fixtures");

function fixtureTexts(): string[] {
  const texts: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".json")) texts.push(readFileSync(path, "utf8"));
    }
  };
  walk(FIXTURES);
  return texts;
}

const HOSTILE = [
  "",
  "plain ascii",
  "'",
  "''",
  "\\",
  "\\'",
  "'\\",
  "O'Reilly \\ C:\\path\\",
  "\u0000",
  "a\u0000'b\\",
  "\u007f",
  "\u0080",
  "é",
  "\ud800",
  "\udfff",
  "x\ud83dy",
  "\ude00'",
  "\ud83d\ude00",
  "😀'\\",
  "\u2028\u2029",
  "\uffff",
  "\ufeff",
  "表\\'",
  "\u8868\u005c\u0027", // SJIS's trail-byte trap: 表 then \ then '
  `{"event_id":"a'b","payload":{"s":"\\u0000\\ud800 \\\\ '"}}`,
];

describe("record writer literal(): identical to the regex implementation", () => {
  it("on hostile strings (U+0000, lone surrogates, quotes, backslashes, non-BMP)", () => {
    for (const text of HOSTILE) expect(literal(text)).toBe(reference(text));
    // As JSON, the way the writer hands them over (inside its rows' JSON text).
    for (const text of HOSTILE) expect(literal(JSON.stringify(text))).toBe(reference(JSON.stringify(text)));
  });

  it("on huge strings, ASCII and not, with the special character at either end or nowhere", () => {
    const big = "x".repeat(3_000_000);
    for (const text of [big, `'${big}`, `${big}\\`, `${big}é`, `\ud800${big}`, `${big}\ud83d\ude00'`]) {
      expect(literal(text)).toBe(reference(text));
    }
  });

  it("on the repository's recorded provider payloads, raw and as batch JSON", () => {
    const texts = fixtureTexts();
    expect(texts.length).toBeGreaterThan(100);
    for (const text of texts) {
      expect(literal(text)).toBe(reference(text));
      const batch = `[${texts.slice(0, 3).join(",")},${JSON.stringify({ payload: text })}]`;
      expect(literal(batch)).toBe(reference(batch));
    }
  });

  it("on arbitrary strings of any code units", () => {
    const specials = fc.constantFrom("'", "\\", "\u0000", "\ud800", "\udc00", "é", "😀", "\u007f", "\u0080");
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 64 }),
      fc.string({ unit: "grapheme-ascii", maxLength: 64 }),
      fc
        .array(fc.oneof(specials, fc.string({ unit: "grapheme-ascii", maxLength: 8 })), { maxLength: 16 })
        .map((parts) => parts.join("")),
      fc
        .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 32 })
        .map((units) => String.fromCharCode(...units)),
    );
    fc.assert(
      fc.property(text, (t) => literal(t) === reference(t)),
      { numRuns: 5_000 },
    );
  });
});
