import { ABSENT, memberOf, onlyKeys, type Plain, plain, plainRecord } from "../schemas/plain.js";
import { type ParsedProviderUsage, USAGE_APIS } from "./provider-usage-schema.js";

/**
 * The hot-path pre-check of `toObservation`'s `ProviderUsageSchema`, after
 * `fastParseObservation`: exactly the schema's output for a plainly valid provider payload, else
 * `undefined`, and the schema parses it (it owns every message). It accepts only what the
 * schema accepts unchanged, so it can only be stricter: a plain object with no unknown key and
 * no hidden (non-enumerable) member, a known `api`, exactly one of `usage` / `response` other than `undefined`, and an observation
 * that is a plain record (any symbol key, an own `__proto__`, another constructor: the schema).
 * Each member is read once, and the value read is the value returned.
 *
 * The output, as the schema's: `{ api, usage?, response?, observation }` in that order; `usage`
 * and `response` as given (not copied, `undefined` kept when present as such, absent when
 * absent); `observation` a fresh copy of the caller's own enumerable string keys, in
 * `Object.keys` order (inherited and non-enumerable members left out). The schema stays the
 * single source; `test/facade/provider-usage-fast.test.ts` compares the two.
 *
 * Why: this schema's zod was ~133 ms of self time over ~14,400 provider-payload `record()` calls
 * in a CPU profile of the example gateway (embedded default), ~9 µs a call.
 *
 * @packageDocumentation
 */

const APIS: ReadonlySet<unknown> = new Set(USAGE_APIS);
const KEYS: ReadonlySet<string> = new Set(["api", "usage", "response", "observation"]);

/**
 * `input` in `ProviderUsageSchema`'s output shape when it is plainly valid; `undefined`
 * sends it to the schema.
 */
export function fastParseProviderUsage(input: unknown): ParsedProviderUsage | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  // Each member read once, in the schema's order, then asked whether present (zod's order): a
  // required member a Proxy's `has` denies is absent for zod, which refuses it.
  const api = value.api;
  const usage = memberOf(value, "usage");
  const response = memberOf(value, "response");
  const observationIn = value.observation;
  if (!APIS.has(api) || !("api" in value) || !("observation" in value)) return undefined;
  // Exactly one payload form (the schema's refinement: absent and `undefined` alike are none).
  const hasUsage = usage !== ABSENT && usage !== undefined;
  const hasResponse = response !== ABSENT && response !== undefined;
  if (hasUsage === hasResponse) return undefined;
  const present = 2 + (usage === ABSENT ? 0 : 1) + (response === ABSENT ? 0 : 1);
  if (!onlyKeys(value, KEYS, present)) return undefined;
  const observation = recordCopy(observationIn);
  if (observation === undefined) return undefined;
  const out: Plain = { api };
  if (usage !== ABSENT) out.usage = usage;
  if (response !== ABSENT) out.response = response;
  out.observation = observation;
  return out as ParsedProviderUsage;
}

/** `z.record(z.string(), z.unknown())`'s copy: each own enumerable string key, in order, read once. */
function recordCopy(input: unknown): Record<string, unknown> | undefined {
  const value = plainRecord(input);
  if (value === undefined) return undefined;
  const out: Plain = {};
  for (const key of Object.keys(value)) out[key] = value[key];
  return out;
}
