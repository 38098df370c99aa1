import { z } from "zod";
import { LatchValidationError } from "../errors/index.js";

/** A UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `String.prototype.isWellFormed` (ES2024, in every Node Latch supports): false exactly when
 * {@link LONE_SURROGATE} matches, several times faster (every id on the record path is checked).
 * The pattern stays for a runtime without it.
 */
const WELL_FORMED = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/**
 * Whether `value` is text every backend stores exactly: no U+0000 and no lone surrogate. Drivers
 * send strings as UTF-8, which has no lone surrogates (they become U+FFFD, so two distinct ids
 * would alias), and PostgreSQL's text and jsonb cannot hold U+0000. Tabs, newlines and every
 * other character are fine.
 */
export function isWellFormedText(value: string): boolean {
  if (value.includes("\u0000")) return false;
  return WELL_FORMED === undefined ? !LONE_SURROGATE.test(value) : WELL_FORMED.call(value);
}

/**
 * The one rule for strings that reach a store (ids, names, filters, labels), applied by the
 * shared schemas, so every backend, the in-memory one included, refuses the same input with
 * `invalid_input` naming the field. Use as `z.string().check(WellFormedText)`.
 */
export const WellFormedText = z.refine<string>(isWellFormedText, {
  error: "must not contain U+0000 or an unpaired surrogate",
});

const Id = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);

/** Who is billed: a tenant, optionally narrowed to org, project, API key, end user and feature. */
export const BillingSubjectSchema = z.strictObject({
  tenantId: Id,
  orgId: Id.optional(),
  projectId: Id.optional(),
  apiKeyId: Id.optional(),
  endUserId: Id.optional(),
  feature: Id.optional(),
});
export type BillingSubject = z.output<typeof BillingSubjectSchema>;
export type BillingSubjectInput = z.input<typeof BillingSubjectSchema>;

/** Ids that tie an observation to the request, trace, session or parent event it came from. */
export const CorrelationIdsSchema = z.strictObject({
  requestId: Id.optional(),
  traceId: Id.optional(),
  sessionId: Id.optional(),
  parentEventId: z.string().min(1).max(512).check(WellFormedText).optional(),
  /**
   * The hold the call was reserved under (quota or credits). `latch.record(input, { hold })`
   * sets it, so `latch.reconcileQuota()` can commit a quota hold from the stored record when
   * the settle was lost (a quota store error, a crash between record and settle), and the burn
   * of a credit hold's call that an ingest worker, the spool replay, `rerateUnpriced()` or
   * `reconcileCredits()` makes commits the hold as that burn.
   */
  holdId: Id.optional(),
  /**
   * The credit feature of the credit hold `holdId` (its `featureId`, which `reserve()` may take
   * from the request rather than `credits.featureId`): `record(input, { hold })` sets it with
   * `holdId` for a credit hold, never for a quota hold. The later burn commits the hold with
   * what this feature counts of the call; the ledger has no way to read a hold's feature back.
   */
  holdFeatureId: Id.optional(),
  /**
   * The ledger of the credit hold `holdId` (the `account` `reserve()` held it on):
   * `record(input, { hold })` sets it with `holdFeatureId` for a credit hold, never for a quota
   * hold. When `(holdLedgerId, holdFeatureId)` is none of the call's routes (a hold-only
   * feature), the call's later burn (worker, spool replay, `rerateUnpriced()`,
   * `reconcileCredits()`) burns that feature on that ledger as well, as a usage event keyed by
   * the call's `eventId` (the same event the hold's commit records, so it burns once), once the
   * ledger checked the link in that burn: the feature is burned whether the hold was committed
   * or voided (not when it was purged first: nothing can check the link then). Not by the caller's own `record()` burn (`settle()`'s commit burns it),
   * nor replaced by a correction (version 1's amount stays). Absent on an observation an older release linked:
   * its hold's commit stays the only burn of a hold-only feature.
   */
  holdLedgerId: Id.optional(),
});
export type CorrelationIds = z.output<typeof CorrelationIdsSchema>;

/** An observation's idempotency key. Build it with {@link UsageEventId}. */
export const EventIdSchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(512, { error: "at most 512 characters" })
  .check(WellFormedText);

/**
 * What {@link EventIdSchema} accepts (and returns unchanged), without zod: for hot paths that
 * check an id on every call and leave the schema the messages for a bad one. Never looser than
 * the schema, and stricter in one case: it counts at most 512 UTF-16 units where zod counts 512
 * code points, so a longer id of astral characters goes to the schema (which accepts it).
 */
export function isEventId(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= 512 && isWellFormedText(value);
}

const PART = /^[^:\s]{1,200}$/;
const PHASE = /^[a-z][a-z0-9_-]{0,31}$/;

function checkPart(name: string, value: unknown): string {
  if (typeof value !== "string" || !PART.test(value)) {
    throw LatchValidationError.at(
      "UsageEventId",
      name,
      "expected 1–200 characters without ':' or whitespace",
    );
  }
  return value;
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw LatchValidationError.at("UsageEventId", name, "expected a non-negative integer");
  }
  return value;
}

/**
 * Deterministic event ids: the same provider attempt of the same request always gets the
 * same id, so a retried `record()` is recognised as a duplicate instead of billed twice.
 *
 * @example
 * UsageEventId.fromAttempt("req-1", 0, "openai"); // "req-1:0:openai"
 * UsageEventId.builder("req-1").attempt(1).provider("anthropic").step(2).phase("tool").build();
 * // "req-1:1:anthropic:step2:tool"
 */
export const UsageEventId = {
  fromAttempt(requestId: string, attempt: number, provider: string): string {
    return `${checkPart("requestId", requestId)}:${checkCount("attempt", attempt)}:${checkPart("provider", provider)}`;
  },
  builder(requestId: string): UsageEventIdBuilder {
    return new UsageEventIdBuilder(checkPart("requestId", requestId));
  },
};

/** Builds `requestId:attempt:provider[:step<n>][:<phase>]` for multi-step (agent, tool) calls. */
export class UsageEventIdBuilder {
  #attempt = 0;
  #provider: string | undefined;
  #step: number | undefined;
  #phase: string | undefined;

  constructor(private readonly requestId: string) {}

  attempt(n: number): this {
    this.#attempt = checkCount("attempt", n);
    return this;
  }
  provider(id: string): this {
    this.#provider = checkPart("provider", id);
    return this;
  }
  /** Position of the call inside an agent loop or workflow. */
  step(n: number): this {
    this.#step = checkCount("step", n);
    return this;
  }
  /** A short lowercase label such as `plan`, `tool` or `answer`. */
  phase(label: string): this {
    if (typeof label !== "string" || !PHASE.test(label)) {
      throw LatchValidationError.at(
        "UsageEventId",
        "phase",
        "expected lowercase letters, digits, '_' or '-' (≤ 32)",
      );
    }
    this.#phase = label;
    return this;
  }
  build(): string {
    if (this.#provider === undefined)
      throw LatchValidationError.at("UsageEventId", "provider", "is required");
    let id = `${this.requestId}:${this.#attempt}:${this.#provider}`;
    if (this.#step !== undefined) id += `:step${this.#step}`;
    if (this.#phase !== undefined) id += `:${this.#phase}`;
    return id;
  }
}
