import * as crypto from "node:crypto";
import { parsedCanonicalJson } from "../observation/parse.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units), no whitespace, `undefined`
 * members dropped, `undefined` array items `null`, bigints as decimal strings. Two values that
 * mean the same thing serialise to the same bytes, whatever their key order.
 *
 * Written for batch hot paths (a store hashes every row): strings are built by concatenation,
 * keys are sorted only when they are not in order already, and a plain object with sorted keys
 * and primitive members goes through native `JSON.stringify`.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return `"${value.toString()}"`;
    case "object":
      if (value === null) return "null";
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value);
    default:
      return "null"; // undefined, functions, symbols: what `JSON.stringify(v) ?? "null"` gives
  }
}

function canonicalArray(value: readonly unknown[]): string {
  let out = "[";
  for (let i = 0; i < value.length; i++) {
    if (i > 0) out += ",";
    const item = value[i];
    out += item === undefined ? "null" : canonicalJson(item);
  }
  return `${out}]`;
}

/** Quoted keys: an object's keys repeat from row to row. Bounded, so arbitrary keys cannot grow it. */
const quotedKeys = new Map<string, string>();

function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size < 4_096) quotedKeys.set(key, quoted);
  }
  return quoted;
}

function isPlain(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Sorts an object's own keys in place by UTF-16 code units, as `Array.prototype.sort()` does:
 * an insertion sort for the few keys of a record or a line item (no comparator calls, no
 * string conversions; keys are distinct, so stability cannot show), the built-in sort past that.
 */
function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
}

function canonicalObject(value: object): string {
  const keys = Object.keys(value);
  let sorted = true;
  let flat = true;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && (keys[i - 1] as string) > (keys[i] as string)) sorted = false;
    const member = (value as Record<string, unknown>)[keys[i] as string];
    const type = typeof member;
    if (type !== "string" && !(type === "number" && Number.isFinite(member)) && type !== "boolean")
      flat = false;
  }
  // A plain object (no toJSON to call) with sorted keys and only strings, finite numbers and
  // booleans: JSON.stringify's native output is already canonical.
  if (sorted && flat && isPlain(value)) return JSON.stringify(value);
  if (!sorted) sortKeys(keys);
  let out = "{";
  let first = true;
  for (const key of keys) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined) continue;
    if (first) first = false;
    else out += ",";
    out += quoteKey(key);
    out += ":";
    out += canonicalJson(member);
  }
  return `${out}}`;
}

/** SHA-256 hex of a string's UTF-8 bytes: the one-shot `crypto.hash` (Node ≥ 20.12) when present. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "hex")
    : (text) => crypto.createHash("sha256").update(text).digest("hex");

/**
 * `sha256:<hex>` of text that is already canonical JSON: lets a store hash and store one
 * serialisation without producing it twice (`hashCanonicalJson(canonicalJson(v))` is
 * `canonicalHash(v)`).
 */
export function hashCanonicalJson(json: string): string {
  return `sha256:${sha256Hex(json)}`;
}

/** `sha256:<hex>` of a value's canonical JSON. */
export function canonicalHash(value: unknown): string {
  return hashCanonicalJson(canonicalJson(value));
}

/**
 * The canonical JSON of an observation, computed once per parsed observation: it is deep-frozen
 * (see `parseObservation`), so its serialisation cannot change, and the record path hashes it
 * on append and again inside its rated record. Any other value is serialised each time.
 */
export function observationCanonicalJson(observation: UsageObservation): string {
  return observationJson(observation);
}

function observationJson(observation: UsageObservation): string {
  return parsedCanonicalJson(observation, canonicalJson) ?? canonicalJson(observation);
}

/** The idempotency hash of an observation: equal payloads, equal hashes. */
export function observationHash(observation: UsageObservation): string {
  return hashCanonicalJson(observationJson(observation));
}

/**
 * The idempotency hash of a rated record. `ratedAt` is left out: rating the same observation
 * against the same snapshot again (a retry after a crash) is the same record.
 *
 * The bytes are exactly `canonicalJson` of the record without `ratedAt` (stored hashes stay
 * valid); it is built member by member so that the observation's cached serialisation is
 * reused and no copy of the record is made.
 */
export function ratedRecordHash(record: RatedUsageRecord): string {
  const keys = Object.keys(record);
  sortKeys(keys);
  let out = "{";
  let first = true;
  for (const key of keys) {
    if (key === "ratedAt") continue;
    const member = (record as Record<string, unknown>)[key];
    if (member === undefined) continue;
    if (first) first = false;
    else out += ",";
    out += quoteKey(key);
    out += ":";
    out += key === "observation" ? observationJson(member as UsageObservation) : canonicalJson(member);
  }
  return hashCanonicalJson(`${out}}`);
}
