import { Buffer } from "node:buffer";
import { canonicalHash } from "../contracts/hashing.js";
import { HighWatermarkError, IdempotencyConflictError, LatchValidationError } from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";
import { IsoTimestampSchema, TIMESTAMP_YEARS } from "../schemas/time.js";
import { addCalendar } from "./calendar.js";
import type { CreditGrant } from "./contract.js";
import { toCreditUnits, type UsageFact } from "./engine.js";
import {
  CreditCommitSchema,
  type CreditFeature,
  CreditFeatureSchema,
  type CreditGrantRequest,
  CreditGrantSchema,
  CreditHistoryQuerySchema,
  CreditIdSchema,
  type CreditLedgerInfo,
  CreditLedgerListQuerySchema,
  CreditLedgerSchema,
  CreditReserveSchema,
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

/**
 * Parses a usage event; the hash covers what identifies the usage (not `enforce`; `version`
 * only above 1, so version-1 hashes are those stored before versions existed).
 */
export function parseCreditUsage(input: unknown, subject = "CreditUsage") {
  const usage = parseWith(CreditUsageSchema, input, subject);
  const { enforce: _enforce, version, ...rest } = usage;
  const identity = version === 1 ? rest : { ...rest, version };
  const fact: UsageFact = {
    featureId: usage.featureId,
    eventId: usage.eventId,
    amount: toCreditUnits(usage.amount),
    atMs: Date.parse(usage.at),
  };
  return { usage, hash: canonicalHash(identity), fact };
}

/**
 * What to do with a usage event given the stored version of it, if any: `write` it (new, or a
 * higher version), answer `duplicate` (the same version and body), or `superseded` (a higher
 * version is stored). The same version with another body throws `idempotency_conflict`.
 */
export function usageDecision(
  stored: { hash: string; version: number } | undefined,
  incoming: { eventId: string; hash: string; version: number },
): "write" | "duplicate" | "superseded" {
  if (stored === undefined || incoming.version > stored.version) return "write";
  if (incoming.version < stored.version) return "superseded";
  assertSameBody(incoming.eventId, stored.hash, incoming.hash);
  return "duplicate";
}

/**
 * Negative usage is a refund, which only a money feature takes (see the credit engine): a
 * quantity (tokens, requests) is never negative, so a negative amount for a quantity feature
 * is `invalid_input` naming `amount`.
 */
export function assertUsageAmountFits(feature: CreditFeature, amount: string, subject: string): void {
  if (feature.measure.kind === "quantity" && amount.startsWith("-")) {
    throw LatchValidationError.at(
      subject,
      "amount",
      "must be ≥ 0 for a quantity feature: only money features take refunds",
    );
  }
}

/** Parses a reserve request; returns it with its idempotency hash (not `ttlMs`). */
export function parseCreditReserve(input: unknown) {
  const request = parseWith(CreditReserveSchema, input, "CreditReserve");
  const { ttlMs: _ttl, holdId: _id, ...identity } = request;
  return { request, hash: canonicalHash(identity), amount: toCreditUnits(request.amount) };
}

/**
 * Parses a commit; `hash` identifies it (a retry with the same body is the same commit) and
 * `usage(ledgerId, featureId)` is the usage event it records against the hold's feature.
 */
export function parseCreditCommit(input: unknown) {
  const commit = parseWith(CreditCommitSchema, input, "CreditCommit");
  // The body a retry must repeat: `featureId` and `ledgerId` are checks, not part of it (with or
  // without them, the same commit).
  const { holdId: _id, featureId: claimed, ledgerId: claimedLedger, ...identity } = commit;
  return {
    commit,
    hash: canonicalHash(identity),
    usage: (ledgerId: string, featureId: string) =>
      parseCreditUsage({ ...identity, ledgerId, featureId, enforce: false }, "CreditCommit"),
    /**
     * Refuses the commit (`invalid_input` naming `featureId`) when it names another feature
     * than the hold's: call it before anything else, whatever the hold's state.
     */
    assertHoldFeature: (holdFeatureId: string): void => {
      if (claimed !== undefined && claimed !== holdFeatureId)
        throw LatchValidationError.at(
          "CreditCommit",
          "featureId",
          `is ${JSON.stringify(claimed)}, but the hold is of feature ${JSON.stringify(holdFeatureId)}: nothing committed`,
        );
    },
    /**
     * Refuses the commit (`invalid_input` naming `ledgerId`) when it names another ledger than
     * the hold's: call it before anything else, whatever the hold's state.
     */
    assertHoldLedger: (holdLedgerId: string): void => {
      if (claimedLedger !== undefined && claimedLedger !== holdLedgerId)
        throw LatchValidationError.at(
          "CreditCommit",
          "ledgerId",
          `is ${JSON.stringify(claimedLedger)}, but the hold is on ledger ${JSON.stringify(holdLedgerId)}: nothing committed`,
        );
    },
  };
}

/** A holdId argument. */
export function parseHoldIdArg(value: unknown, subject: string): string {
  return parseWith(CreditIdSchema, value, subject, "holdId");
}

/** Parses a history query; adds `fromMs` and `toMs` (epoch milliseconds). */
export function parseCreditHistoryQuery(input: unknown) {
  const query = parseWith(CreditHistoryQuerySchema, input, "CreditHistoryQuery");
  return { ...query, fromMs: Date.parse(query.from), toMs: Date.parse(query.to) };
}

/**
 * Parses a `listLedgers` query: `subject` (the fields to match), `limit`, and `after`, the
 * ledgerId the cursor continues after (undefined on the first page). A cursor that
 * {@link ledgerListCursor} did not produce is `invalid_input` naming `cursor`.
 */
export function parseCreditLedgerListQuery(input: unknown): {
  subject: Partial<CreditLedgerInfo["subject"]>;
  limit: number;
  after: string | undefined;
} {
  const subject = "CreditLedgerListQuery";
  const query = parseWith(CreditLedgerListQuerySchema, input, subject);
  return {
    subject: query.subject,
    limit: query.limit,
    after: query.cursor === undefined ? undefined : decodeLedgerCursor(query.cursor, subject),
  };
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The opaque cursor of a `listLedgers` page that ends at `ledgerId`: base64url of its JSON
 * (JSON keeps every code unit, lone surrogates included, so any id round-trips).
 */
export function ledgerListCursor(ledgerId: string): string {
  return Buffer.from(JSON.stringify([ledgerId]), "utf8").toString("base64url");
}

/** Decodes a cursor strictly: only what {@link ledgerListCursor} produces is accepted. */
function decodeLedgerCursor(cursor: string, subject: string): string {
  const bad = () => LatchValidationError.at(subject, "cursor", "expected a cursor returned by listLedgers()");
  if (!BASE64URL.test(cursor)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 1 || !CreditIdSchema.safeParse(parsed[0]).success) {
    throw bad();
  }
  const ledgerId = parsed[0] as string;
  // Canonical form only: rejects lenient decodings (padding, stray bits, tampered text).
  if (ledgerListCursor(ledgerId) !== cursor) throw bad();
  return ledgerId;
}

/**
 * `a` before `b` in code-point order (-1, 0, 1): the order of their UTF-8 bytes, which is
 * PostgreSQL's `COLLATE "C"` order, so every backend lists ledgers in the same order. (Plain
 * `<` compares UTF-16 code units, which puts U+10000 and above before U+E000–U+FFFF.)
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // the same surrogate pair in both
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * A `listLedgers` page from up to `limit + 1` matching ledgers in order after the cursor:
 * the first `limit`, and `next` when there were more.
 */
export function ledgerListPage(
  ledgers: CreditLedgerInfo[],
  limit: number,
): { items: CreditLedgerInfo[]; next?: string } {
  if (ledgers.length <= limit) return { items: ledgers };
  const items = ledgers.slice(0, limit);
  return { items, next: ledgerListCursor((items.at(-1) as CreditLedgerInfo).ledgerId) };
}

/** Whether a ledger's subject has every field given in `filter` (equality). */
export function subjectMatches(
  subject: CreditLedgerInfo["subject"],
  filter: Partial<CreditLedgerInfo["subject"]>,
): boolean {
  for (const [key, value] of Object.entries(filter) as Array<[keyof typeof subject, string | undefined]>) {
    if (value !== undefined && subject[key] !== value) return false;
  }
  return true;
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

/** The last millisecond a timestamp may name (9999-12-31T23:59:59.999Z). */
const LAST_INSTANT_MS = Date.parse(`${TIMESTAMP_YEARS.max}-12-31T23:59:59.999Z`);

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
    // An expiry past the last year a timestamp may name would be stored differently by each
    // backend (or refused by PostgreSQL): refused here, naming the field, on every backend.
    if (!(expires <= LAST_INSTANT_MS)) {
      throw LatchValidationError.at(
        "CreditLedger.grant",
        "expiration",
        `expires after the year ${TIMESTAMP_YEARS.max}: use a shorter expiration, or none`,
      );
    }
    grant.expiresAt = new Date(expires).toISOString();
  }
  return grant;
}

/** The conflict hash of a void (its time). */
export function voidHash(at: string): string {
  return canonicalHash({ voidedAt: at });
}
