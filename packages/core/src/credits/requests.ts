import { canonicalHash } from "../contracts/hashing.js";
import { HighWatermarkError, IdempotencyConflictError, LatchValidationError } from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";
import { IsoTimestampSchema } from "../schemas/time.js";
import { addCalendar } from "./calendar.js";
import type { CreditGrant } from "./contract.js";
import { toCreditUnits, type UsageFact } from "./engine.js";
import {
  CreditFeatureSchema,
  type CreditGrantRequest,
  CreditGrantSchema,
  CreditHistoryQuerySchema,
  CreditIdSchema,
  type CreditLedgerInfo,
  CreditLedgerSchema,
  CreditResetSchema,
  CreditUsageSchema,
  CreditVoidSchema,
} from "./schemas.js";

/**
 * The decisions every {@link CreditLedger} backend makes the same way: parsing (so bad input
 * names the same field everywhere), idempotency hashes, the high-watermark rule and the
 * derived fields of a grant. Backends add storage and locking around them.
 *
 * @packageDocumentation
 */

/** Parses a feature; returns it with its idempotency hash. */
export function parseCreditFeature(input: unknown) {
  const feature = parseWith(CreditFeatureSchema, input, "CreditFeature");
  return { feature, hash: canonicalHash(feature) };
}

/** Parses a ledger; returns it with its idempotency hash. */
export function parseCreditLedger(input: unknown) {
  const ledger = parseWith(CreditLedgerSchema, input, "CreditLedger");
  return { ledger, hash: canonicalHash(ledger) };
}

/** Parses a grant request; returns it with its idempotency hash. */
export function parseCreditGrant(input: unknown) {
  const request = parseWith(CreditGrantSchema, input, "CreditGrant");
  return { request, hash: canonicalHash(request) };
}

/** Parses a void request (`at` normalised to `toISOString()` form). */
export function parseCreditVoid(input: unknown) {
  return parseWith(CreditVoidSchema, input, "CreditVoid");
}

/** Parses a reset request (`at` normalised to `toISOString()` form). */
export function parseCreditReset(input: unknown) {
  return parseWith(CreditResetSchema, input, "CreditReset");
}

/** Parses a usage event; the hash covers what identifies the usage (not `enforce`). */
export function parseCreditUsage(input: unknown) {
  const usage = parseWith(CreditUsageSchema, input, "CreditUsage");
  const { enforce: _enforce, ...identity } = usage;
  const fact: UsageFact = {
    featureId: usage.featureId,
    eventId: usage.eventId,
    amount: toCreditUnits(usage.amount),
    atMs: Date.parse(usage.at),
  };
  return { usage, hash: canonicalHash(identity), fact };
}

/** Parses a history query; adds `fromMs` and `toMs` (epoch milliseconds). */
export function parseCreditHistoryQuery(input: unknown) {
  const query = parseWith(CreditHistoryQuerySchema, input, "CreditHistoryQuery");
  return { ...query, fromMs: Date.parse(query.from), toMs: Date.parse(query.to) };
}

/** A ledger id argument (`balance`, `listGrants`, …). */
export function parseLedgerIdArg(value: unknown, subject: string): string {
  return parseWith(CreditIdSchema, value, subject, "ledgerId");
}

/** A feature id argument. */
export function parseFeatureIdArg(value: unknown, subject: string): string {
  return parseWith(CreditIdSchema, value, subject, "featureId");
}

/** A time argument, in epoch milliseconds. */
export function parseTimeArg(value: unknown, subject: string, field: string): number {
  return Date.parse(parseWith(IsoTimestampSchema, value, subject, field));
}

/** `invalid_input` naming `field`: the id it holds is unknown. */
export function unknownId(subject: string, field: string, what: string): LatchValidationError {
  return LatchValidationError.at(subject, field, `no ${what} with this id`);
}

/** The same id with another body: `idempotency_conflict`; the same body: fine. */
export function assertSameBody(id: string, existingHash: string, incomingHash: string): void {
  if (existingHash !== incomingHash) throw new IdempotencyConflictError({ id, existingHash, incomingHash });
}

/** Throws `high_watermark` when `atMs` is before the ledger's latest reset. */
export function assertNotBeforeHighWatermark(
  ledgerId: string,
  highWatermarkMs: number | null,
  atMs: number,
  field: string,
): void {
  if (highWatermarkMs !== null && atMs < highWatermarkMs) {
    throw new HighWatermarkError({ ledgerId, highWatermark: new Date(highWatermarkMs).toISOString(), field });
  }
}

/** The stored grant: the request plus its expiry (in the ledger's zone) and creation order. */
export function buildGrant(
  request: CreditGrantRequest,
  ledger: CreditLedgerInfo,
  sequence: number,
): CreditGrant {
  const grant: CreditGrant = { ...request, sequence };
  if (request.expiration !== undefined) {
    const expires = addCalendar(
      Date.parse(request.effectiveAt),
      request.expiration.count,
      request.expiration.unit,
      ledger.timeZone,
    );
    grant.expiresAt = new Date(expires).toISOString();
  }
  return grant;
}

/** The conflict hash of a void (its time). */
export function voidHash(at: string): string {
  return canonicalHash({ voidedAt: at });
}
