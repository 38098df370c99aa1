import type { z } from "zod";
import { isQuotaName, isQuotaUnits } from "../contracts/inputs.js";
import { isHoldTtlMs } from "../contracts/reserve-request.js";
import { onlyKeys, plain } from "../schemas/plain.js";
import type { ReserveSchema } from "./schemas.js";

/**
 * The hot-path pre-check of a quota `latch.reserve()` request: a copy of `input` when it is
 * plainly valid, in exactly the shape {@link ReserveSchema} gives (same keys, same order, same
 * values), else `undefined`, and the schema parses it (it owns every message). Like
 * `fastParseObservation`, it accepts only what the schema accepts unchanged, so it can only be
 * stricter: a plain object whose members are all enumerable, names that are also well-formed
 * (what the quota store accepts; the schema leaves that check to the store). Each member is
 * read once, and the copy holds the values checked. `test/facade/fast-reserve.test.ts` holds it
 * to the schema.
 *
 * Why: zod was most of `reserve()`'s own cost on the embedded default.
 *
 * @packageDocumentation
 */

/** What {@link ReserveSchema} gives. */
export type ReserveInput = z.output<typeof ReserveSchema>;

const RESERVE_KEYS: ReadonlySet<string> = new Set(["account", "amount", "holdId", "ttlMs"]);

/**
 * A copy of `input` as {@link ReserveSchema} would give it when it is plainly a valid quota
 * reserve request; `undefined` sends it to the schema.
 *
 * The schema's output, pinned by the tests: members in the schema's order (`account`, `amount`,
 * `holdId`, `ttlMs`), whatever the caller's; an optional member absent stays absent, and one
 * present as `undefined` comes out present as `undefined`.
 */
export function fastParseReserve(input: unknown): ReserveInput | undefined {
  const value = plain(input);
  if (value === undefined) return undefined;
  // Each member read by name, then asked whether present, as zod does (a Proxy's `has` may deny
  // a member its `get` gives: zod then refuses a required one and leaves an optional one out).
  const account = value.account;
  const amount = value.amount;
  if (!isQuotaName(account) || !isQuotaUnits(amount, 1) || !("account" in value) || !("amount" in value))
    return undefined;
  const out: ReserveInput = { account, amount };
  let present = 2;
  const holdId = value.holdId;
  if ("holdId" in value) {
    if (holdId !== undefined && !isQuotaName(holdId)) return undefined;
    out.holdId = holdId;
    present++;
  }
  const ttlMs = value.ttlMs;
  if ("ttlMs" in value) {
    if (ttlMs !== undefined && !isHoldTtlMs(ttlMs)) return undefined;
    out.ttlMs = ttlMs;
    present++;
  }
  // Last: the members read above that are not enumerable make the counts differ.
  return onlyKeys(value, RESERVE_KEYS, present) ? out : undefined;
}
