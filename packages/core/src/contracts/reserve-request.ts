import { z } from "zod";
import { isWellFormedText } from "../schemas/identity.js";
import { parseWith } from "../schemas/parse.js";
import { QuotaAmountSchema, QuotaNameSchema } from "./inputs.js";
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

const isName = (value: unknown): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= 256 && isWellFormedText(value);
const isInteger = (value: unknown, min: number, max: number): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;

/**
 * True when `value` is a plain object with exactly the four fields of a valid reserve
 * request: a check without zod for hot paths. It accepts only what
 * {@link ReserveRequestSchema} accepts unchanged; anything else goes through the schema,
 * which owns every message.
 */
export function isReserveRequest(value: unknown): value is ReserveRequest {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const r = value as Record<string, unknown>;
  let fields = 0;
  for (const key in r) {
    if (key !== "holdId" && key !== "account" && key !== "amount" && key !== "ttlMs") return false;
    fields++;
  }
  return (
    fields === 4 &&
    isName(r.holdId) &&
    isName(r.account) &&
    isInteger(r.amount, 1, Number.MAX_SAFE_INTEGER) &&
    isInteger(r.ttlMs, 1, HOLD_TTL_MAX_MS)
  );
}

/**
 * Parses a reserve request (`invalid_input` naming the field, subject `ReserveRequest`). A
 * valid plain request is returned as is, without zod.
 *
 * @example
 * const { holdId, account, amount, ttlMs } = parseReserveRequest(request);
 */
export function parseReserveRequest(input: unknown): ReserveRequest {
  return isReserveRequest(input) ? input : parseWith(ReserveRequestSchema, input, "ReserveRequest");
}
