import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchError, LatchValidationError } from "../../src/errors/index.js";
import {
  isJsonObject,
  JsonNumber,
  JsonParseError,
  type JsonPath,
  type JsonValue,
  jsonPointer,
  parseJsonExact,
} from "../../src/pricing/json-decimal.js";

/** Numbers → `Number(text)`, objects → plain objects (own `__proto__` keys kept as data, like JSON.parse). */
function toPlain(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return Number(value.text);
  if (Array.isArray(value)) return value.map(toPlain);
  if (isJsonObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, {
        value: toPlain(value[key] as JsonValue),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

function parseError(text: string): JsonParseError {
  try {
    parseJsonExact(text);
  } catch (e) {
    if (e instanceof JsonParseError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

const num = (v: JsonValue | undefined) => {
  if (!(v instanceof JsonNumber)) throw new Error("expected a JsonNumber");
  return v.text;
};

describe("parseJsonExact: values", () => {
  it("parses every kind of value", () => {
    const v = parseJsonExact('{"n":null,"t":true,"f":false,"s":"x","i":1,"a":[1,"2",[]],"o":{"k":{}}}');
    expect(toPlain(v)).toEqual({ n: null, t: true, f: false, s: "x", i: 1, a: [1, "2", []], o: { k: {} } });
    expect(parseJsonExact("null")).toBeNull();
    expect(parseJsonExact(" true ")).toBe(true);
    expect(parseJsonExact('"top"')).toBe("top");
    expect(num(parseJsonExact("42"))).toBe("42");
  });

  it("keeps numbers as their exact source text", () => {
    const v = parseJsonExact(
      "[1E+2, -0.0, 12345678901234567890123, 3e-06, 0, -1.5e-300, 0.1, 1.1e-06, 2.9999900000000002e-06]",
    );
    if (!Array.isArray(v)) throw new Error("expected an array");
    expect(v.map(num)).toEqual([
      "1E+2",
      "-0.0",
      "12345678901234567890123",
      "3e-06",
      "0",
      "-1.5e-300",
      "0.1",
      "1.1e-06",
      "2.9999900000000002e-06",
    ]);
    const big = v[2] as JsonNumber;
    expect(big).toBeInstanceOf(JsonNumber);
    expect(big.toNumber()).toBe(Number("12345678901234567890123"));
    expect(String(big.toNumber())).toBe("1.2345678901234568e+22");
    // The double loses digits that the text keeps.
    expect(String(big.toNumber())).not.toBe(big.text);
  });

  it("decodes every escape", () => {
    const text = String.raw`"q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC"`;
    expect(parseJsonExact(text)).toBe(JSON.parse(text));
    expect(parseJsonExact(text)).toBe('q" b\\ s/ \b\f\n\r\t Aé€');
  });

  it("joins surrogate pairs and keeps lone surrogates like JSON.parse", () => {
    expect(parseJsonExact(String.raw`"\ud83d\ude00"`)).toBe("😀");
    expect(parseJsonExact(String.raw`"\uD83D\uDE00 and 😀 raw"`)).toBe("😀 and 😀 raw");
    expect(parseJsonExact(String.raw`"\ud800x"`)).toBe(JSON.parse(String.raw`"\ud800x"`));
    expect(parseJsonExact(String.raw`"\udc00"`)).toBe("\udc00");
  });

  it("parses nesting and every kind of whitespace", () => {
    const text = ' \t\r\n{ "a" : [ [ [ { "b" : [ 1 , { } ] } ] ] ] ,\r\n "c" :\t"d" }\n';
    expect(toPlain(parseJsonExact(text))).toEqual(JSON.parse(text));
    const deep = `${"[".repeat(200)}1${"]".repeat(200)}`;
    expect(toPlain(parseJsonExact(deep))).toEqual(JSON.parse(deep));
  });

  it("returns null-prototype objects, so __proto__ and toString are plain keys", () => {
    const v = parseJsonExact('{"__proto__": 1, "toString": "x", "constructor": null}');
    if (!isJsonObject(v)) throw new Error("expected an object");
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.keys(v)).toEqual(["__proto__", "toString", "constructor"]);
    expect(num(v.__proto__)).toBe("1");
    expect(v.toString).toBe("x");
    expect(isJsonObject(parseJsonExact("{}"))).toBe(true);
    expect(isJsonObject(parseJsonExact("[]"))).toBe(false);
  });

  it("ignores a leading byte-order mark", () => {
    expect(num(parseJsonExact("\ufeff7"))).toBe("7");
  });

  it("rejects a repeated key unless asked to report it (then the last wins, as in JSON.parse)", () => {
    const text = '{"m": {"p": 1, "p": 2}, "m2": 3}';
    const e = parseError(text);
    expect(e.issues[0]?.path).toBe("/m/p");
    expect(e.issues[0]?.message).toContain("duplicate member name");
    const seen: JsonPath[] = [];
    const v = parseJsonExact(text, { onDuplicateKey: (p) => seen.push(p) });
    expect(seen).toEqual([["m", "p"]]);
    expect(toPlain(v)).toEqual({ m: { p: 2 }, m2: 3 });
  });

  it("builds RFC 6901 pointers", () => {
    expect(jsonPointer([])).toBe("");
    expect(jsonPointer(["a/b", "m~1", 0])).toBe("/a~1b/m~01/0");
  });
});

describe("parseJsonExact: rejects what RFC 8259 rejects", () => {
  const bad: Array<[string, string, string]> = [
    ["trailing comma in an array", "[1, 2,]", "trailing comma"],
    ["trailing comma in an object", '{"a": 1,}', "trailing comma"],
    ["a leading zero", "01", "leading zeros"],
    ["a negative leading zero", "[-012]", "leading zeros"],
    ["NaN", "NaN", "unexpected character 'N'"],
    ["Infinity", "[Infinity]", "unexpected character 'I'"],
    ["-Infinity", "-Infinity", "expected a digit after '-'"],
    ["a bare minus", "-", "expected a digit after '-'"],
    ["a leading dot", ".5", "unexpected character '.'"],
    ["a trailing dot", "1.", "expected a digit after '.'"],
    ["an empty exponent", "1e", "exponent"],
    ["an exponent sign without digits", "1e+", "exponent"],
    ["a leading plus", "+1", "unexpected character '+'"],
    ["hexadecimal", "0x10", "after the JSON value"],
    ["single-quoted strings", "{'a': 1}", "expected a member name in double quotes"],
    ["single-quoted values", "['a']", "unexpected character '''"],
    ["unquoted keys", "{a: 1}", "expected a member name"],
    ["an unterminated string", '{"a": "abc', "unterminated string"],
    ["an unterminated key", '{"ab', "unterminated string"],
    ["an unterminated array", "[1, 2", "expected ',' or ']'"],
    ["an unterminated object", '{"a": 1', "expected ',' or '}'"],
    ["a missing colon", '{"a" 1}', "expected ':'"],
    ["a missing value", '{"a": }', "expected a JSON value"],
    ["trailing garbage", '{"a": 1} x', "after the JSON value"],
    ["two values", "1 2", "after the JSON value"],
    ["a raw control character", '"a\u0001b"', "unescaped control character"],
    ["a raw newline in a string", '"a\nb"', "unescaped control character"],
    ["an invalid escape", String.raw`"\x41"`, "invalid escape"],
    ["a short \\u escape", String.raw`"\u12"`, "four hexadecimal digits"],
    ["a non-hex \\u escape", String.raw`"\u12G4"`, "four hexadecimal digits"],
    ["a misspelled literal", "tru", "unexpected character 't'"],
    ["a capitalised literal", "True", "unexpected character 'T'"],
    ["a comment", '// x\n{"a": 1}', "unexpected character '/'"],
    ["empty text", "", "end of the text"],
    ["only whitespace", "  \n ", "end of the text"],
    ["a non-breaking space", "\u00a01", "U+00A0"],
  ];
  for (const [what, text, message] of bad) {
    it(`rejects ${what}`, () => {
      const e = parseError(text);
      expect(e.issues[0]?.message).toContain(message);
      expect(() => JSON.parse(text)).toThrow(); // the reference parser agrees
    });
  }

  it("throws a LatchValidationError (invalid_input) with line, column and JSON pointer", () => {
    const text = '{\n  "a": 1,\n  "b": [1, 2,]\n}';
    const e = parseError(text);
    expect(e).toBeInstanceOf(LatchValidationError);
    expect(LatchError.isInstance(e)).toBe(true);
    expect(e.code).toBe("invalid_input");
    expect(e.subject).toBe("JSON");
    expect(e.line).toBe(3);
    expect(e.column).toBe(14);
    expect(e.offset).toBe(text.indexOf("]"));
    expect(e.issues).toEqual([{ path: "/b", message: "trailing comma before ']' at line 3, column 14" }]);
    expect(e.message).toBe("Invalid JSON: /b: trailing comma before ']' at line 3, column 14");
  });

  it("counts CRLF and CR line endings as one line each", () => {
    const e = parseError('{\r\n"a":\r1,\r\n"b": x}');
    expect([e.line, e.column]).toEqual([4, 6]);
    expect(e.issues[0]?.path).toBe("/b");
  });

  it("names the subject and points inside arrays", () => {
    try {
      parseJsonExact('{"m": {"p": [0, 01]}}', { subject: "LiteLLM cost map" });
      expect.unreachable();
    } catch (e) {
      if (!(e instanceof JsonParseError)) throw e;
      expect(e.subject).toBe("LiteLLM cost map");
      expect(e.issues[0]?.path).toBe("/m/p/1");
      expect(e.message).toContain(
        "Invalid LiteLLM cost map: /m/p/1: invalid number: leading zeros are not allowed",
      );
    }
  });

  it("refuses nesting deeper than maxDepth instead of overflowing the stack", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    expect(parseError(deep).issues[0]?.message).toContain("nesting deeper than 512 levels");
    expect(() => parseJsonExact("[[[1]]]", { maxDepth: 2 })).toThrow(/nesting deeper than 2 levels/);
    expect(toPlain(parseJsonExact("[[1]]", { maxDepth: 2 }))).toEqual([[1]]);
  });

  it("rejects non-string input", () => {
    expect(() => parseJsonExact(42 as unknown as string)).toThrow(LatchValidationError);
  });
});

describe("parseJsonExact: agrees with JSON.parse", () => {
  it("on random JSON values (numbers converted with Number(text))", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
        const text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
        expect(toPlain(parseJsonExact(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it("on random strings, including escapes and surrogates", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const text = JSON.stringify(s);
        expect(parseJsonExact(text)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it("keeps every generated number's text exactly", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
        const text = JSON.stringify(d);
        expect(num(parseJsonExact(text))).toBe(text);
      }),
    );
  });
});

describe("parseJsonExact: linear time", () => {
  it("parses a 2 MB cost map quickly", () => {
    const entries: string[] = [];
    for (let i = 0; i < 7500; i++) {
      entries.push(
        `"provider/model-${i}": {"input_cost_per_token": ${i + 1}e-07, "output_cost_per_token": 1.5e-05,` +
          ` "litellm_provider": "p\\u00e9-${i}", "supports_vision": ${i % 2 === 0}, "max_tokens": 128000,` +
          ` "supported_endpoints": ["/v1/chat/completions", "/v1/responses"], "source": "https://example.com/x/${i}"}`,
      );
    }
    const text = `{\n${entries.join(",\n")}\n}`;
    expect(text.length).toBeGreaterThan(2_000_000);
    const started = performance.now();
    const v = parseJsonExact(text);
    const elapsed = performance.now() - started;
    expect(toPlain(v)).toEqual(JSON.parse(text));
    expect(elapsed).toBeLessThan(10_000); // linear, not quadratic: seconds to spare on a loaded machine
  });

  it("handles a very long string and a long run of escapes", () => {
    const s = `${"a".repeat(1_000_000)}${"\\n".repeat(200_000)}`;
    expect((parseJsonExact(`"${s}"`) as string).length).toBe(1_200_000);
  });
});
