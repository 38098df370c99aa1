import { z } from "zod";
import { parseWith } from "../schemas/parse.js";
import { onlyKeys, plain } from "../schemas/plain.js";
import { isQuotaName, isQuotaUnits, QuotaAmountSchema, QuotaNameSchema } from "./inputs.js";
import type { ReserveRequest } from "./quota.js";

/**
 * The reserve request of a hold, checked the same way by every backend (in-memory, Postgres,
 * Redis, yours): the same request is granted or refused with the same `invalid_input`,
 * naming the same field, whatever the store. A hold's lifetime has one limit for quota and
 * credit holds alike: {@link HOLD_TTL_MAX_MS}.
 *
 * @packageDocumentation
 */

/**
 * The longest hold lifetime, in milliseconds: 2,147,483,647 (2^31-1, about 24.8 days), the
 * longest delay a JS timer takes. Quota holds, credit holds and the facade's `holdTtlMs` share it.
 */
export const HOLD_TTL_MAX_MS = 2_147_483_647;

const TTL_MESSAGE = `expected an integer number of milliseconds from 1 to ${HOLD_TTL_MAX_MS}`;

/** A hold's lifetime in milliseconds: an integer from 1 to {@link HOLD_TTL_MAX_MS}. */
export const HoldTtlSchema = z
  .number({ error: TTL_MESSAGE })
  .int({ error: TTL_MESSAGE })
  .min(1, { error: TTL_MESSAGE })
  .max(HOLD_TTL_MAX_MS, { error: TTL_MESSAGE });

/** `QuotaReservator.reserve`'s request. */
export const ReserveRequestSchema = z.strictObject({
  holdId: QuotaNameSchema,
  account: QuotaNameSchema,
  amount: QuotaAmountSchema,
  ttlMs: HoldTtlSchema,
});

/** Exactly what {@link HoldTtlSchema} accepts (returned unchanged): an integer from 1 to {@link HOLD_TTL_MAX_MS}. */
export function isHoldTtlMs(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1 && value <= HOLD_TTL_MAX_MS;
}

const REQUEST_KEYS: ReadonlySet<string> = new Set(["holdId", "account", "amount", "ttlMs"]);

/**
 * A copy of `value` in {@link ReserveRequestSchema}'s output shape (its four members, in the
 * schema's order) when it is a plain object with exactly the four fields of a valid reserve
 * request, else `undefined`: the schema parses it and owns every message. It accepts only what
 * the schema accepts unchanged. Each member is read once, and the copy holds the values that
 * were checked (an accessor or a Proxy may answer differently on a second read).
 */
function readReserveRequest(input: unknown): ReserveRequest | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  const holdId = value.holdId;
  const account = value.account;
  const amount = value.amount;
  const ttlMs = value.ttlMs;
  if (
    !isQuotaName(holdId) ||
    !isQuotaName(account) ||
    !isQuotaUnits(amount, 1) ||
    !isHoldTtlMs(ttlMs) ||
    // Present as zod asks (after reading): it refuses a member a Proxy's `has` denies.
    !("holdId" in value) ||
    !("account" in value) ||
    !("amount" in value) ||
    !("ttlMs" in value) ||
    !onlyKeys(value, REQUEST_KEYS, 4)
  )
    return undefined;
  return { holdId, account, amount, ttlMs };
}

/**
 * True when `value` is a plain object with exactly the four fields of a valid reserve
 * request: a check without zod for hot paths. It accepts only what
 * {@link ReserveRequestSchema} accepts unchanged; anything else goes through the schema,
 * which owns every message.
 */
export function isReserveRequest(value: unknown): value is ReserveRequest {
  return readReserveRequest(value) !== undefined;
}

/**
 * Parses a reserve request (`invalid_input` naming the field, subject `ReserveRequest`). A
 * valid plain request is copied member by member (each read once), without zod.
 *
 * @example
 * const { holdId, account, amount, ttlMs } = parseReserveRequest(request);
 */
export function parseReserveRequest(input: unknown): ReserveRequest {
  return readReserveRequest(input) ?? parseWith(ReserveRequestSchema, input, "ReserveRequest");
}
