import { isWellFormedText } from "../schemas/identity.js";
import { isMeterKind, isQuantity, MAX_METERS } from "../schemas/meters.js";
import type { UsageObservation } from "../schemas/observation.js";
import { ABSENT, memberOf, onlyKeys, type Plain, plain, plainRecord } from "../schemas/plain.js";
import { IsoTimestampSchema, TIMESTAMP_YEARS, usualTimestamp } from "../schemas/time.js";

/**
 * The hot-path pre-check of `parseObservation`: a copy of `input` when it is plainly valid, in
 * exactly the shape `UsageObservationSchema` would give (same keys, same order, same values),
 * else `undefined`, and the schema parses it (it owns every message). Like `RedisQuota`'s
 * pre-checks, it accepts only what the schema accepts unchanged, so it can only be stricter:
 * plain objects with no unknown, symbol or `undefined` members, and attributes that need no
 * message (a bad one, a `__proto__` key, any symbol key goes to the schema). Each member is read once and the value read is the value checked and copied (an
 * accessor or a Proxy may answer differently on a second read). The schema stays the single source; `test/observation/fast-parse.test.ts` checks that
 * every value this accepts parses to the same value there.
 *
 * Why: `record()` validates each call's observation, and zod is most of the facade's cost on
 * the embedded default.
 *
 * @packageDocumentation
 */

/** A string of 1..max UTF-16 units with no U+0000 or unpaired surrogate (`WellFormedText`). */
function text(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= max && isWellFormedText(value);
}

/**
 * The format `IsoTimestampSchema` checks (zod's ISO datetime pattern, read from the schema so
 * that it stays the schema's), plus its year rule. No pattern to read: every timestamp goes to
 * the schema.
 */
const ISO_PATTERN: RegExp | undefined = (() => {
  const pattern = (IsoTimestampSchema as unknown as { _zod?: { pattern?: unknown } })._zod?.pattern;
  return pattern instanceof RegExp && !pattern.global && !pattern.sticky ? pattern : undefined;
})();

function timestamp(value: unknown): value is string {
  return (
    typeof value === "string" &&
    ISO_PATTERN !== undefined &&
    (usualTimestamp(value) || (ISO_PATTERN.test(value) && Number(value.slice(0, 4)) >= TIMESTAMP_YEARS.min))
  );
}

const OBSERVATION_KEYS = [
  "eventId",
  "subject",
  "meters",
  "model",
  "provider",
  "source",
  "outcome",
  "timing",
  "correlation",
  "attributes",
] as const;
const OBSERVATION_SET: ReadonlySet<string> = new Set(OBSERVATION_KEYS);

const SUBJECT_KEYS = ["tenantId", "orgId", "projectId", "apiKeyId", "endUserId", "feature"] as const;
const SUBJECT_SET: ReadonlySet<string> = new Set(SUBJECT_KEYS);
const MODEL_KEYS = ["billableModel", "vendor", "region", "tier"] as const;
const MODEL_SET: ReadonlySet<string> = new Set(MODEL_KEYS);
const CORRELATION_KEYS = [
  "requestId",
  "traceId",
  "sessionId",
  "parentEventId",
  "holdId",
  "holdFeatureId",
  "holdLedgerId",
] as const;
const CORRELATION_SET: ReadonlySet<string> = new Set(CORRELATION_KEYS);
const PROVIDER_KEYS = ["providerId"] as const;
const PROVIDER_SET: ReadonlySet<string> = new Set(PROVIDER_KEYS);
const KIND_SET: ReadonlySet<string> = new Set(["kind"]);
const TIMING_SET: ReadonlySet<string> = new Set(["startedAt", "completedAt"]);
const SIMPLE_SOURCES: ReadonlySet<unknown> = new Set([
  "provider_reported",
  "stream_accumulated",
  "estimated",
]);
const SIMPLE_OUTCOMES: ReadonlySet<unknown> = new Set(["success", "timeout", "unknown"]);
const CORRECTED_SET: ReadonlySet<string> = new Set(["kind", "correctionOf"]);
const ERROR_SET: ReadonlySet<string> = new Set(["kind", "code"]);

/** A strict object of optional text members (each 1..max), copied in schema order, each read once. */
function texts(
  input: unknown,
  keys: readonly string[],
  allowed: ReadonlySet<string>,
  max: (key: string) => number,
): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const out: Plain = {};
  let count = 0;
  for (const key of keys) {
    if (!(key in value)) continue;
    const member = value[key]; // `undefined` (present as such) is no text: refused
    if (!text(member, max(key))) return undefined;
    out[key] = member;
    count++;
  }
  return onlyKeys(value, allowed, count) ? Object.freeze(out) : undefined;
}

/*
 * The subject, model and provider of every call, as `texts` checks them (same members, same
 * order, each read once), with each member read by name: a property load with its own inline
 * cache, where the generic loop makes a keyed `in` and a keyed load per schema key. A required
 * member is read as is: absent, it reads `undefined`, refused as it would be present as such.
 */

function subjectOf(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const tenantId = value.tenantId;
  if (!text(tenantId, 256) || !("tenantId" in value)) return undefined; // see `fastParseObservation`
  const out: Plain = { tenantId };
  let count = 1;
  if ("orgId" in value) {
    const orgId = value.orgId;
    if (!text(orgId, 256)) return undefined;
    out.orgId = orgId;
    count++;
  }
  if ("projectId" in value) {
    const projectId = value.projectId;
    if (!text(projectId, 256)) return undefined;
    out.projectId = projectId;
    count++;
  }
  if ("apiKeyId" in value) {
    const apiKeyId = value.apiKeyId;
    if (!text(apiKeyId, 256)) return undefined;
    out.apiKeyId = apiKeyId;
    count++;
  }
  if ("endUserId" in value) {
    const endUserId = value.endUserId;
    if (!text(endUserId, 256)) return undefined;
    out.endUserId = endUserId;
    count++;
  }
  if ("feature" in value) {
    const feature = value.feature;
    if (!text(feature, 256)) return undefined;
    out.feature = feature;
    count++;
  }
  return onlyKeys(value, SUBJECT_SET, count) ? Object.freeze(out) : undefined;
}

function modelOf(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const billableModel = value.billableModel;
  if (!text(billableModel, 256) || !("billableModel" in value)) return undefined;
  const out: Plain = { billableModel };
  let count = 1;
  if ("vendor" in value) {
    const vendor = value.vendor;
    if (!text(vendor, 256)) return undefined;
    out.vendor = vendor;
    count++;
  }
  if ("region" in value) {
    const region = value.region;
    if (!text(region, 256)) return undefined;
    out.region = region;
    count++;
  }
  if ("tier" in value) {
    const tier = value.tier;
    if (!text(tier, 256)) return undefined;
    out.tier = tier;
    count++;
  }
  return onlyKeys(value, MODEL_SET, count) ? Object.freeze(out) : undefined;
}

function providerOf(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const providerId = value.providerId;
  if (!text(providerId, 256) || !("providerId" in value) || !onlyKeys(value, PROVIDER_SET, 1))
    return undefined;
  return Object.freeze({ providerId });
}

const correlationMax = (key: string) => (key === "parentEventId" ? 512 : 256);

/** A meter set (see {@link plainRecord} for what goes to the schema instead). */
function meters(input: unknown): Plain | undefined {
  const value = plainRecord(input);
  if (value === undefined) return undefined;
  const keys = Object.keys(value);
  if (keys.length > MAX_METERS) return undefined; // the schema names the bound
  const out: Plain = {};
  for (const key of keys) {
    const quantity = value[key];
    if (!isMeterKind(key) || !isQuantity(quantity)) return undefined;
    out[key] = quantity;
  }
  return Object.freeze(out);
}

/** UTF-8 length of `s` is at most `max` bytes (a UTF-16 unit takes at most 3). */
function fitsUtf8(s: string, max: number): boolean {
  return s.length * 3 <= max || (s.length <= max && Buffer.byteLength(s, "utf8") <= max);
}

/**
 * Attributes (`AttributesSchema`: a record read as zod reads one — own enumerable keys, in
 * order — of well-formed string values ≤ 256 bytes, at most 64 keys, each non-empty,
 * well-formed, ≤ 64 bytes and not `sys.`-prefixed). Anything else, a `__proto__` key (which the
 * schema path refuses by name) or any symbol key included, goes to the schema. Each value is
 * read once.
 */
function attributesOf(input: unknown): Plain | undefined {
  const value = plainRecord(input);
  if (value === undefined) return undefined;
  const keys = Object.keys(value);
  if (keys.length > 64) return undefined;
  const out: Plain = {};
  for (const key of keys) {
    if (
      key.length === 0 ||
      key === "__proto__" ||
      key.startsWith("sys.") ||
      !fitsUtf8(key, 64) ||
      !isWellFormedText(key)
    )
      return undefined;
    const label = value[key];
    if (typeof label !== "string" || !fitsUtf8(label, 256) || !isWellFormedText(label)) return undefined;
    out[key] = label;
  }
  return Object.freeze(out);
}

/**
 * `{ kind }` of a source or outcome without other members, one frozen object per kind shared by
 * every observation (frozen, nobody can tell it from a copy): no object and no freeze per call.
 */
const SIMPLE_KINDS: ReadonlyMap<string, Plain> = new Map(
  ["provider_reported", "stream_accumulated", "estimated", "success", "timeout", "unknown"].map((kind) => [
    kind,
    Object.freeze({ kind }),
  ]),
);
const simpleKind = (kind: string) => SIMPLE_KINDS.get(kind) as Plain;

function source(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const kind = value.kind;
  if (!("kind" in value)) return undefined;
  if (SIMPLE_SOURCES.has(kind)) return onlyKeys(value, KIND_SET, 1) ? simpleKind(kind as string) : undefined;
  if (kind !== "corrected" || !onlyKeys(value, CORRECTED_SET, 2)) return undefined;
  const correctionOf = value.correctionOf;
  return text(correctionOf, 512) && "correctionOf" in value
    ? Object.freeze({ kind, correctionOf })
    : undefined;
}

function outcome(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const kind = value.kind;
  if (!("kind" in value)) return undefined;
  if (SIMPLE_OUTCOMES.has(kind)) return onlyKeys(value, KIND_SET, 1) ? simpleKind(kind as string) : undefined;
  if (kind !== "error" || !onlyKeys(value, ERROR_SET, 2)) return undefined;
  const code = value.code;
  return text(code, 128) && "code" in value ? Object.freeze({ kind, code }) : undefined;
}

function timing(input: unknown): Plain | undefined {
  const value = plain(input);
  if (value === undefined || !onlyKeys(value, TIMING_SET, 2)) return undefined;
  const { startedAt, completedAt } = value;
  if (
    !timestamp(startedAt) ||
    !timestamp(completedAt) ||
    !("startedAt" in value) ||
    !("completedAt" in value)
  )
    return undefined;
  // Same length, same format: the text order is the time order (no Date.parse needed).
  if (
    startedAt.length === completedAt.length
      ? completedAt < startedAt
      : Date.parse(completedAt) < Date.parse(startedAt)
  )
    return undefined;
  return Object.freeze({ startedAt, completedAt });
}

/**
 * A copy of `input` in the schema's output shape when it is plainly a valid observation, its
 * members frozen already (the caller freezes the observation itself,
 * once it has added what it keeps beside it); `undefined` sends it to the schema.
 */
export function fastParseObservation(input: unknown): UsageObservation | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  // Each member read once, in OBSERVATION_KEYS order (no array per call). A required member is read by name (one property load, not a keyed `in` and a load):
  // absent, it reads `undefined`, refused below as it would be present as `undefined`.
  const eventId = value.eventId;
  const subjectIn = value.subject;
  const metersIn = value.meters;
  const modelIn = value.model;
  const providerMember = memberOf(value, "provider");
  const sourceIn = value.source;
  const outcomeIn = value.outcome;
  const timingIn = value.timing;
  const correlationMember = memberOf(value, "correlation");
  const attributesMember = memberOf(value, "attributes");
  // Present: the required members (each refused below when absent) and the optional ones given.
  // One present as `undefined` is refused, as before.
  if (providerMember === undefined || correlationMember === undefined || attributesMember === undefined)
    return undefined;
  // Asked after the reads, as zod asks (a constant-key `in` each): a Proxy's `has` may deny a
  // required member its `get` gives, and zod then refuses it as absent. So in each nested reader.
  if (
    !("eventId" in value) ||
    !("subject" in value) ||
    !("meters" in value) ||
    !("model" in value) ||
    !("source" in value) ||
    !("outcome" in value) ||
    !("timing" in value)
  )
    return undefined;
  const present =
    7 +
    (providerMember === ABSENT ? 0 : 1) +
    (correlationMember === ABSENT ? 0 : 1) +
    (attributesMember === ABSENT ? 0 : 1);
  if (!onlyKeys(value, OBSERVATION_SET, present)) return undefined;
  const providerIn = providerMember === ABSENT ? undefined : providerMember;
  const correlationIn = correlationMember === ABSENT ? undefined : correlationMember;
  if (!text(eventId, 512)) return undefined;
  const subject = subjectOf(subjectIn);
  if (subject === undefined) return undefined;
  const meterSet = meters(metersIn);
  const model = modelOf(modelIn);
  if (meterSet === undefined || model === undefined) return undefined;
  const out: Plain = { eventId, subject, meters: meterSet, model };
  if (providerIn !== undefined) {
    const provider = providerOf(providerIn);
    if (provider === undefined) return undefined;
    out.provider = provider;
  }
  const from = source(sourceIn);
  const ended = outcome(outcomeIn);
  const when = timing(timingIn);
  if (from === undefined || ended === undefined || when === undefined) return undefined;
  out.source = from;
  out.outcome = ended;
  out.timing = when;
  if (correlationIn !== undefined) {
    const correlation = texts(correlationIn, CORRELATION_KEYS, CORRELATION_SET, correlationMax);
    if (correlation === undefined) return undefined;
    out.correlation = correlation;
  }
  if (attributesMember !== ABSENT) {
    const attributes = attributesOf(attributesMember);
    if (attributes === undefined) return undefined;
    out.attributes = attributes;
  }
  return out as UsageObservation;
}
