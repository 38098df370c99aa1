import { createHash } from "node:crypto";
import { isParsedObservation } from "../observation/parse.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";

// Parsed observations are deep-frozen, so their canonical JSON never changes: compute it once.
const observationJsonCache = new WeakMap<object, string>();

/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped. Two values
 * that mean the same thing serialise to the same bytes, whatever their key order.
 */
export function canonicalJson(value: unknown): string {
  if (isParsedObservation(value)) {
    let json = observationJsonCache.get(value);
    if (json === undefined) {
      json = canonicalObject(value);
      observationJsonCache.set(value, json);
    }
    return json;
  }
  if (value === null || typeof value !== "object") {
    if (typeof value === "bigint") return JSON.stringify(value.toString());
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  return canonicalObject(value);
}

function canonicalObject(value: object): string {
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(",")}}`;
}

/** `sha256:<hex>` of a value's canonical JSON. */
export function canonicalHash(value: unknown): string {
  return `sha256:${createHash("sha256").update(canonicalJson(value)).digest("hex")}`;
}

/** The idempotency hash of an observation: equal payloads, equal hashes. */
export function observationHash(observation: UsageObservation): string {
  return canonicalHash(observation);
}

/**
 * The idempotency hash of a rated record. `ratedAt` is left out: rating the same observation
 * against the same snapshot again (a retry after a crash) is the same record.
 */
export function ratedRecordHash(record: RatedUsageRecord): string {
  const { ratedAt: _ratedAt, ...rest } = record;
  return canonicalHash(rest);
}
