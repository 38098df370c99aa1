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
  // Required members are read by name: absent, they read `undefined`, refused below.
  const account = value.account;
  const amount = value.amount;
  if (!isQuotaName(account) || !isQuotaUnits(amount, 1)) return undefined;
  const out: ReserveInput = { account, amount };
  let present = 2;
  if ("holdId" in value) {
    const holdId = value.holdId;
    if (holdId !== undefined && !isQuotaName(holdId)) return undefined;
    out.holdId = holdId;
    present++;
  }
  if ("ttlMs" in value) {
    const ttlMs = value.ttlMs;
    if (ttlMs !== undefined && !isHoldTtlMs(ttlMs)) return undefined;
    out.ttlMs = ttlMs;
    present++;
  }
  // Last: the members read above that are not enumerable make the counts differ.
  return onlyKeys(value, RESERVE_KEYS, present) ? out : undefined;
}
