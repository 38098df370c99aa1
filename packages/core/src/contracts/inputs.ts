import { createHash } from "node:crypto";
import { z } from "zod";
import { IdempotencyConflictError, LatchValidationError } from "../errors/index.js";
import { parseObservation } from "../observation/parse.js";
import { EventIdSchema, isWellFormedText, WellFormedText } from "../schemas/identity.js";
import type { UsageObservation } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";

/**
 * The input schemas of the contracts, shared by every implementation (in-memory, Postgres,
 * Redis, yours) so that the same bad input gets the same `invalid_input`, naming the same
 * field, whatever the backend.
 */

const units = (what: string, min: number) =>
  z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .min(min, { error: `expected ${what}` })
    .max(Number.MAX_SAFE_INTEGER, { error: `expected ${what}` });

const pageLimit = z
  .number({ error: "expected an integer from 1 to 10000" })
  .int({ error: "expected an integer from 1 to 10000" })
  .min(1, { error: "expected an integer from 1 to 10000" })
  .max(10_000, { error: "expected an integer from 1 to 10000" });

/** A quota account or hold id: 1–256 characters, well-formed (see {@link WellFormedText}). */
export const QuotaNameSchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);
/** A reserved amount: integer quota units > 0. */
export const QuotaAmountSchema = units("a safe integer > 0", 1);
/** A committed amount: integer quota units ≥ 0. */
export const QuotaActualSchema = units("a safe integer ≥ 0", 0);
/** An account's limit: integer quota units ≥ 0. */
export const QuotaLimitSchema = units("a safe integer ≥ 0", 0);

/*
 * The same rules without zod, for the quota stores' hot paths (every reserve, commit and void
 * checks a name and an amount): each accepts exactly what its schema accepts, and the schema
 * returns such a value unchanged. A value they refuse goes to the schema, which owns every
 * message. `test/contracts/quota-inputs.test.ts` holds them to the schemas.
 */

/**
 * `value` has at most `max` code points, as zod's `.max()` counts a string (a surrogate pair is
 * one): only a string longer than `max` UTF-16 units needs counting, and one longer than
 * `2 * max` units cannot fit.
 */
function atMostCodePoints(value: string, max: number): boolean {
  const units = value.length;
  if (units <= max) return true;
  if (units > 2 * max) return false;
  let count = units;
  for (let i = 0; i < units - 1; i++) {
    if ((value.charCodeAt(i) & 0xfc00) === 0xd800 && (value.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count <= max;
}

/**
 * Exactly what {@link QuotaNameSchema} accepts: a non-empty string of at most 256 characters
 * (code points, as zod counts them), well-formed. For an adapter's hot path: take the value
 * as it is when this holds, else parse it with the schema, which names what is wrong.
 *
 * @example
 * const account = isQuotaName(input) ? input : parseWith(QuotaNameSchema, input, "MyQuota.balance", "account");
 */
export function isQuotaName(value: unknown): value is string {
  return (
    typeof value === "string" && value.length >= 1 && atMostCodePoints(value, 256) && isWellFormedText(value)
  );
}

/**
 * Exactly what the quota unit schemas accept: a safe integer ≥ `min` — 1 for
 * {@link QuotaAmountSchema}, 0 for {@link QuotaActualSchema} and {@link QuotaLimitSchema}
 * (`-0` included, as zod: returned as given).
 *
 * @example
 * if (!isQuotaUnits(actual, 0)) parseWith(QuotaActualSchema, actual, "MyQuota.commit", "actual"); // throws, naming it
 */
export function isQuotaUnits(value: unknown, min: 0 | 1): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}

/** A usage counter key: 1–512 characters, well-formed. */
export const CounterKeySchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(512, { error: "at most 512 characters" })
  .check(WellFormedText);
/** A usage counter period (e.g. `2026-02`): 1–128 characters, well-formed. */
export const CounterPeriodSchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(128, { error: "at most 128 characters" })
  .check(WellFormedText);

/** A usage counter operation id (an event id): 1–512 characters. */
export const CounterOpIdSchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(512, { error: "at most 512 characters" })
  .check(WellFormedText);

/**
 * The error for a counter operation replayed with another quantity: `idempotency_conflict`,
 * with short digests of the two quantities (errors never carry amounts).
 */
export function counterOpConflict(opId: string, stored: number | string, incoming: number | string) {
  const digest = (q: number | string) => createHash("sha256").update(String(q)).digest("hex").slice(0, 12);
  return new IdempotencyConflictError({
    id: opId,
    existingHash: digest(stored),
    incomingHash: digest(incoming),
  });
}

/**
 * `UsageCounter.add`'s options, checked the same way on every backend: an AbortSignal alone
 * (the older signature) or `{ opId?, signal? }`.
 */
export function parseCounterAddOptions(
  options: { opId?: string; signal?: AbortSignal } | AbortSignal | undefined,
  subject: string,
): { opId?: string; signal?: AbortSignal } {
  if (options === undefined) return {};
  if (options instanceof AbortSignal) return { signal: options };
  if (typeof options !== "object" || options === null) {
    throw LatchValidationError.at(subject, "options", "expected { opId?, signal? } or an AbortSignal");
  }
  const out: { opId?: string; signal?: AbortSignal } = {};
  if (options.opId !== undefined) out.opId = parseWith(CounterOpIdSchema, options.opId, subject, "opId");
  if (options.signal !== undefined) {
    if (!(options.signal instanceof AbortSignal))
      throw LatchValidationError.at(subject, "signal", "expected an AbortSignal");
    out.signal = options.signal;
  }
  return out;
}

/** `ObservationStore.listUnpriced`'s options. */
export const ListUnpricedOptionsSchema = z.strictObject({
  after: EventIdSchema.optional(),
  limit: pageLimit,
});
/** `ObservationStore.markPriced`'s ids. */
export const EventIdListSchema = z.array(EventIdSchema, { error: "expected an array of event ids" });

/** A rated record id (`eventId:v<n>`). */
export const RatedRecordIdSchema = z
  .string({ error: "expected a string" })
  .min(1)
  .max(600)
  .check(WellFormedText);
/** `RatedRecordStore.listSince`'s page size. */
export const ChangeLogLimitSchema = pageLimit;
/** A change-log consumer's name (`getCursor` / `saveCursor`). */
export const ConsumerNameSchema = z
  .string({ error: "expected a string" })
  .min(1)
  .max(256)
  .check(WellFormedText);

/**
 * Parses every observation of a batch (`appendMany`); a bad one is reported at
 * `<index>.<field>`, and nothing of the batch is written by the caller.
 */
export function parseObservationBatch(observations: unknown): UsageObservation[] {
  if (!Array.isArray(observations)) {
    throw LatchValidationError.at("UsageObservation[]", "", "expected an array of observations");
  }
  return observations.map((input, index) => {
    try {
      return parseObservation(input);
    } catch (error) {
      if (!(error instanceof LatchValidationError)) throw error;
      throw new LatchValidationError({
        subject: error.subject,
        issues: error.issues.map((issue) => ({
          path: issue.path === "" ? String(index) : `${index}.${issue.path}`,
          message: issue.message,
        })),
        cause: error,
      });
    }
  });
}
