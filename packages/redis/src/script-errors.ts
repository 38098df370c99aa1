import { LatchError, LatchValidationError } from "@latch/core";
import { supersededCurrencyMismatch, supersededNotStored } from "@latch/core/adapter";
import {
  CorruptRecordError,
  HoldAlreadyResolvedError,
  type IdempotencyConflictError,
  OverflowError,
  QuotaUnavailableError,
} from "@latch/core/errors";
import { type LuaScriptName, SCRIPT_STATUSES } from "./lua/generated.js";
import { replyInteger, replyString } from "./scripts.js";

/**
 * Negative status codes returned by the Lua scripts (`src/lua/*.lua`), in one table: each
 * script's header lists the ones it returns under `Output:`. Positive codes and 0 are
 * successful outcomes documented in each header. {@link scriptError} turns each into an error.
 */
export const LUA_STATUS = {
  "-1": "idempotency_conflict",
  "-2": "unknown_hold",
  "-3": "hold_already_resolved",
  "-4": "overflow",
  "-5": "superseded_not_stored",
  "-6": "cursor_past_end",
  "-7": "hold_of_other_account",
  "-8": "currency_mismatch",
  "-9": "period_ended",
  "-10": "invalid_argument",
} as const;

export type LuaStatus = (typeof LUA_STATUS)[keyof typeof LUA_STATUS];

/** A status code of {@link LUA_STATUS}, as a number (`-1 | -2 | …`). */
export type LuaStatusCode = {
  [code in keyof typeof LUA_STATUS]: code extends `${infer n extends number}` ? n : never;
}[keyof typeof LUA_STATUS];

/**
 * Whether a script's reply is a failure: an array whose first element is a negative status
 * code. Narrows a typed reply (`CommitReply`, …) to its failure tuples, and to its successes
 * when false.
 */
export function isFailure<R>(reply: R): reply is Extract<R, readonly [LuaStatusCode, ...unknown[]]> {
  return Array.isArray(reply) && reply.length > 0 && Number(reply[0]) < 0;
}

/**
 * The status a failure reply names, when its script's header lists that code (else
 * undefined: {@link scriptError} answers `corrupt_record` for it).
 */
export function statusOf(script: LuaScriptName, reply: readonly unknown[]): LuaStatus | undefined {
  const code = Number(reply[0]);
  if (!SCRIPT_STATUSES[script].includes(code)) return undefined;
  return (LUA_STATUS as Record<string, LuaStatus | undefined>)[String(code)];
}

/** What a caller knows that a reply does not. Each status reads only the parts it needs. */
export interface ScriptErrorContext {
  /** The public method or input the error names (`QuotaReservator.commit`, `RatedUsageRecord`). */
  readonly subject: string;
  /** What the call is about (a holdId, an opId, a consumer name): named by the error. */
  readonly id: string;
  /**
   * `-1`: the conflict, from the reply's fields (each script stores other identities: an
   * amount, an actual amount, a canonical hash). Without it a `-1` is `corrupt_record`.
   */
  readonly conflict?: (reply: readonly unknown[]) => IdempotencyConflictError;
  /**
   * `-5`, `-8`: batch item `index` (0-based): its record and the path prefix of its fields
   * (undefined when the batch has no such item).
   */
  readonly item?: (index: number) => BatchItem | undefined;
}

/** A batch item a status names. */
export interface BatchItem {
  readonly record: { readonly eventId: string; readonly currency: string };
  /** The path of the item's fields: "" for a single record, its index in a batch. */
  readonly prefix: string;
}

/** Where `overflow` points, per script that can overflow. */
const OVERFLOWS: Partial<Record<LuaScriptName, { path: string; reason: string }>> = {
  commit: { path: "actual", reason: "the account's spend would exceed 2^53-1" },
  counterAdd: { path: "quantity", reason: "the period total would exceed 2^53-1" },
  counterAddOnce: { path: "quantity", reason: "the period total would exceed 2^53-1" },
};

/**
 * The error for a script's failure reply (see {@link isFailure}), for every script in one
 * place, so a status means the same error whichever store or method meets it (BullMQ's
 * `finishedErrors`). A status the script's header does not list, or a malformed reply, is
 * `corrupt_record`.
 *
 * @example
 * const reply = await scripts.saveCursor(keys, args);
 * if (isFailure(reply)) throw scriptError("saveCursor", reply, { subject, id: consumer });
 */
export function scriptError(
  script: LuaScriptName,
  reply: readonly unknown[],
  context: ScriptErrorContext,
): LatchError {
  try {
    const error = mapStatus(script, statusOf(script, reply), reply, context);
    if (error !== undefined) return error;
  } catch (error) {
    // A field of the reply that does not read (replyInteger, replyString): corrupt_record.
    if (LatchError.isInstance(error)) return error;
    throw error;
  }
  return new CorruptRecordError({
    id: context.id,
    reason: `the ${script} script replied an unexpected status`,
  });
}

function mapStatus(
  script: LuaScriptName,
  status: LuaStatus | undefined,
  reply: readonly unknown[],
  context: ScriptErrorContext,
): LatchError | undefined {
  switch (status) {
    case "idempotency_conflict":
      return context.conflict?.(reply);
    case "unknown_hold":
      return LatchValidationError.at(context.subject, "holdId", "no hold with this id");
    case "hold_already_resolved":
      return new HoldAlreadyResolvedError({
        holdId: context.id,
        state: replyString(reply[1], `${script}.state`),
      });
    case "overflow": {
      const overflow = OVERFLOWS[script];
      return overflow === undefined ? undefined : new OverflowError(overflow);
    }
    case "superseded_not_stored": {
      const item = context.item?.(replyInteger(reply[1], `${script}.index`) - 1);
      if (item === undefined) return undefined;
      return supersededNotStored(item.prefix);
    }
    case "cursor_past_end":
      return LatchValidationError.at(context.subject, "cursor", "is past the end of this store's change log");
    case "hold_of_other_account":
      // A resolving script redirects to the record's account (quota.ts follows it a few
      // times); one that still names another account then is a store in flux: fail closed.
      return new QuotaUnavailableError({
        reason: `the record of hold ${context.id} kept naming other accounts`,
      });
    case "period_ended":
      // quota.ts rolls the period and calls again a few times; a period that still reads as
      // ended then is a server clock moving past boundaries as fast as we roll: fail closed.
      return new QuotaUnavailableError({ reason: "the account's budget period kept ending" });
    case "invalid_argument":
      // A script refused an argument it was sent (a caller of the script outside RedisQuota,
      // or a bug): the reply names the field.
      return LatchValidationError.at(
        context.subject,
        replyString(reply[1], `${script}.field`),
        "is not valid for this script",
      );
    case "currency_mismatch": {
      const item = context.item?.(replyInteger(reply[1], `${script}.index`) - 1);
      if (item === undefined) return undefined;
      const expected = replyString(reply[2], `${script}.supersededCurrency`);
      return supersededCurrencyMismatch(item.record, expected, item.prefix);
    }
    case undefined:
      return undefined;
  }
}
