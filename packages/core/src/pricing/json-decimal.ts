import { LatchValidationError } from "../errors/index.js";

/**
 * A JSON number kept as its exact source text (`"3e-06"`, `"-0.0"`, `"12345678901234567890123"`),
 * so that prices never pass through a JS double. Convert it with decimal.js (`LatchDecimal`)
 * or, where a double is acceptable, `Number(n.text)`.
 */
export class JsonNumber {
  constructor(readonly text: string) {}

  /** The value as a JS double (lossy for many decimal fractions: `1.1e-06 × 10^6` is not `1.1`). */
  toNumber(): number {
    return Number(this.text);
  }
}

/** An object parsed from JSON: a null-prototype record, so keys such as `__proto__` and `toString` are plain data. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** A JSON value whose numbers are {@link JsonNumber}s. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** A path inside a JSON document: object keys and array indexes, outermost first. */
export type JsonPath = ReadonlyArray<string | number>;

export interface ParseJsonOptions {
  /** What is being parsed, used as the error's `subject` (default `"JSON"`). */
  subject?: string;
  /**
   * Called for every repeated object key (RFC 8259 says names SHOULD be unique). With the
   * callback the last occurrence wins, as in `JSON.parse`; without it a repeated key is an error.
   */
  onDuplicateKey?: (path: JsonPath) => void;
  /** Deepest nesting of arrays and objects accepted (default 512). */
  maxDepth?: number;
}

/**
 * `invalid_input` for text that is not JSON: the issue path is the JSON pointer of the value
 * being read (`""` for the root) and the message gives the line and column.
 */
export class JsonParseError extends LatchValidationError {
  /** 1-based line of the error (lines end at `\n`, `\r\n` or `\r`). */
  readonly line: number;
  /** 1-based column, in UTF-16 code units. */
  readonly column: number;
  /** 0-based offset into the text. */
  readonly offset: number;

  constructor(subject: string, pointer: string, message: string, text: string, offset: number) {
    const { line, column } = lineColumn(text, offset);
    super({ subject, issues: [{ path: pointer, message: `${message} at line ${line}, column ${column}` }] });
    this.name = "JsonParseError";
    this.line = line;
    this.column = column;
    this.offset = offset;
  }
}

/** RFC 6901 JSON pointer of a path: `["gpt-4o", "input_cost_per_token"]` → `/gpt-4o/input_cost_per_token`. */
export function jsonPointer(path: JsonPath): string {
  let out = "";
  for (const segment of path) out += `/${String(segment).replaceAll("~", "~0").replaceAll("/", "~1")}`;
  return out;
}

/** True for a parsed JSON object (not an array, number, or null). */
export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)
  );
}

/**
 * Parses JSON text strictly (RFC 8259) in one linear pass, keeping every number as its
 * exact source text ({@link JsonNumber}). Rejects trailing commas, leading zeros, `NaN`,
 * single quotes, comments, unescaped control characters and trailing garbage; a leading
 * byte-order mark is ignored. Throws {@link JsonParseError} (`invalid_input`) with the line,
 * column and JSON pointer of the first error.
 *
 * @example
 * const v = parseJsonExact('{"price": 3e-06}');
 * // v.price is JsonNumber { text: "3e-06" }, never the double 0.000003
 */
export function parseJsonExact(text: string, options: ParseJsonOptions = {}): JsonValue {
  if (typeof text !== "string") {
    throw LatchValidationError.at(options.subject ?? "JSON", "", "expected JSON text as a string");
  }
  return new Parser(text, options).parseDocument();
}

const C_TAB = 0x09;
const C_NEWLINE = 0x0a;
const C_RETURN = 0x0d;
const C_SPACE = 0x20;
const C_QUOTE = 0x22;
const C_PLUS = 0x2b;
const C_COMMA = 0x2c;
const C_MINUS = 0x2d;
const C_DOT = 0x2e;
const C_SLASH = 0x2f;
const C_ZERO = 0x30;
const C_ONE = 0x31;
const C_NINE = 0x39;
const C_COLON = 0x3a;
const C_UPPER_E = 0x45;
const C_OPEN_BRACKET = 0x5b;
const C_BACKSLASH = 0x5c;
const C_CLOSE_BRACKET = 0x5d;
const C_LOWER_E = 0x65;
const C_OPEN_BRACE = 0x7b;
const C_CLOSE_BRACE = 0x7d;
const C_BOM = 0xfeff;

class Parser {
  private pos = 0;
  private depth = 0;
  private readonly path: Array<string | number> = [];
  private readonly subject: string;
  private readonly maxDepth: number;
  private readonly onDuplicateKey: ((path: JsonPath) => void) | undefined;

  constructor(
    private readonly text: string,
    options: ParseJsonOptions,
  ) {
    this.subject = options.subject ?? "JSON";
    this.maxDepth = options.maxDepth ?? 512;
    this.onDuplicateKey = options.onDuplicateKey;
  }

  parseDocument(): JsonValue {
    if (this.text.charCodeAt(0) === C_BOM) this.pos = 1;
    this.skipWhitespace();
    if (this.pos >= this.text.length) throw this.fail("expected a JSON value, found the end of the text");
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.pos < this.text.length)
      throw this.fail(`unexpected ${this.describeHere()} after the JSON value`);
    return value;
  }

  private fail(message: string, at = this.pos): JsonParseError {
    return new JsonParseError(this.subject, jsonPointer(this.path), message, this.text, at);
  }

  private describeHere(): string {
    if (this.pos >= this.text.length) return "end of the text";
    const c = this.text.charCodeAt(this.pos);
    if (c > 0x20 && c < 0x7f) return `character '${this.text[this.pos]}'`;
    return `character U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
  }

  private skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === C_SPACE || c === C_NEWLINE || c === C_RETURN || c === C_TAB) pos++;
      else break;
    }
    this.pos = pos;
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case C_OPEN_BRACE:
        return this.parseObject();
      case C_OPEN_BRACKET:
        return this.parseArray();
      case C_QUOTE:
        return this.parseString();
      case 0x74: // t
        return this.parseLiteral("true", true);
      case 0x66: // f
        return this.parseLiteral("false", false);
      case 0x6e: // n
        return this.parseLiteral("null", null);
      default:
        if (c === C_MINUS || (c >= C_ZERO && c <= C_NINE)) return this.parseNumber();
        if (Number.isNaN(c)) throw this.fail("expected a JSON value, found the end of the text");
        throw this.fail(`unexpected ${this.describeHere()}: expected a JSON value`);
    }
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos))
      throw this.fail(`unexpected ${this.describeHere()}: expected a JSON value`);
    this.pos += word.length;
    return value;
  }

  private enter(): void {
    if (++this.depth > this.maxDepth) throw this.fail(`nesting deeper than ${this.maxDepth} levels`);
  }

  private parseObject(): JsonObject {
    this.enter();
    this.pos++; // {
    const out: JsonObject = Object.create(null) as JsonObject;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === C_CLOSE_BRACE) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== C_QUOTE) {
        throw this.fail(`unexpected ${this.describeHere()}: expected a member name in double quotes`);
      }
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== C_COLON) {
        throw this.fail(`unexpected ${this.describeHere()}: expected ':' after a member name`);
      }
      this.pos++;
      this.skipWhitespace();
      this.path.push(key);
      if (Object.hasOwn(out, key)) {
        if (this.onDuplicateKey === undefined) throw this.fail("duplicate member name");
        this.onDuplicateKey([...this.path]);
      }
      out[key] = this.parseValue();
      this.path.pop();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === C_COMMA) {
        this.pos++;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) === C_CLOSE_BRACE) throw this.fail("trailing comma before '}'");
        continue;
      }
      if (c === C_CLOSE_BRACE) {
        this.pos++;
        this.depth--;
        return out;
      }
      throw this.fail(`unexpected ${this.describeHere()}: expected ',' or '}' in an object`);
    }
  }

  private parseArray(): JsonValue[] {
    this.enter();
    this.pos++; // [
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === C_CLOSE_BRACKET) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      this.path.push(out.length);
      out.push(this.parseValue());
      this.path.pop();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === C_COMMA) {
        this.pos++;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) === C_CLOSE_BRACKET) throw this.fail("trailing comma before ']'");
        continue;
      }
      if (c === C_CLOSE_BRACKET) {
        this.pos++;
        this.depth--;
        return out;
      }
      throw this.fail(`unexpected ${this.describeHere()}: expected ',' or ']' in an array`);
    }
  }

  /** Reads a string starting at the opening quote. Plain runs are sliced, not copied char by char. */
  private parseString(): string {
    const text = this.text;
    const start = this.pos;
    let pos = start + 1;
    let runStart = pos;
    let out = "";
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === C_QUOTE) {
        this.pos = pos + 1;
        return out + text.slice(runStart, pos);
      }
      if (c === C_BACKSLASH) {
        out += text.slice(runStart, pos);
        const e = text.charCodeAt(pos + 1);
        switch (e) {
          case C_QUOTE:
            out += '"';
            break;
          case C_BACKSLASH:
            out += "\\";
            break;
          case C_SLASH:
            out += "/";
            break;
          case 0x62: // b
            out += "\b";
            break;
          case 0x66: // f
            out += "\f";
            break;
          case 0x6e: // n
            out += "\n";
            break;
          case 0x72: // r
            out += "\r";
            break;
          case 0x74: // t
            out += "\t";
            break;
          case 0x75: {
            // u: four hex digits; a surrogate pair arrives as two escapes and joins naturally.
            const code = hex4(text, pos + 2);
            if (code < 0) throw this.fail("invalid \\u escape: expected four hexadecimal digits", pos);
            out += String.fromCharCode(code);
            pos += 4;
            break;
          }
          default:
            if (Number.isNaN(e)) throw this.fail("unterminated string", start);
            throw this.fail("invalid escape sequence in a string", pos);
        }
        pos += 2;
        runStart = pos;
        continue;
      }
      if (!(c >= 0x20)) {
        // NaN (past the end) fails the comparison too.
        if (Number.isNaN(c)) throw this.fail("unterminated string", start);
        throw this.fail("unescaped control character in a string", pos);
      }
      pos++;
    }
  }

  /** Reads a number per the RFC 8259 grammar and returns its exact text. */
  private parseNumber(): JsonNumber {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    if (text.charCodeAt(pos) === C_MINUS) pos++;
    const first = text.charCodeAt(pos);
    if (first === C_ZERO) {
      pos++;
      const next = text.charCodeAt(pos);
      if (next >= C_ZERO && next <= C_NINE)
        throw this.fail("invalid number: leading zeros are not allowed", start);
    } else if (first >= C_ONE && first <= C_NINE) {
      pos = digitsEnd(text, pos + 1);
    } else {
      throw this.fail("invalid number: expected a digit after '-'", start);
    }
    if (text.charCodeAt(pos) === C_DOT) {
      const end = digitsEnd(text, pos + 1);
      if (end === pos + 1) throw this.fail("invalid number: expected a digit after '.'", start);
      pos = end;
    }
    const e = text.charCodeAt(pos);
    if (e === C_LOWER_E || e === C_UPPER_E) {
      pos++;
      const sign = text.charCodeAt(pos);
      if (sign === C_PLUS || sign === C_MINUS) pos++;
      const end = digitsEnd(text, pos);
      if (end === pos) throw this.fail("invalid number: expected a digit in the exponent", start);
      pos = end;
    }
    this.pos = pos;
    return new JsonNumber(text.slice(start, pos));
  }
}

function digitsEnd(text: string, pos: number): number {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c >= C_ZERO && c <= C_NINE) pos++;
    else return pos;
  }
}

/** Four hex digits at `pos` as a code unit, or -1. */
function hex4(text: string, pos: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const c = text.charCodeAt(pos + i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else return -1;
    value = value * 16 + d;
  }
  return value;
}

/** 1-based line and column of `offset`; computed only when an error is reported. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === C_NEWLINE || (c === C_RETURN && text.charCodeAt(i + 1) !== C_NEWLINE)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}
