import { type LatchError, LatchValidationError } from "@latch/core";
import {
  CorruptRecordError,
  CurrencyMismatchError,
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  OverflowError,
  QuotaUnavailableError,
} from "@latch/core/errors";
import { describe, expect, it } from "vitest";
import { LUA_SCRIPTS, type LuaScriptName } from "../src/lua/generated.js";
import { isFailure, LUA_STATUS, type ScriptErrorContext, scriptError } from "../src/script-errors.js";

/** The negative codes each script's header lists under Output (read here, not by the generator). */
function headerFailures(name: LuaScriptName): number[] {
  const lua = LUA_SCRIPTS[name].lua;
  const output = lua.slice(lua.indexOf("Output:"), lua.indexOf("]]"));
  return [...new Set([...output.matchAll(/^\s*\{(-\d+)/gm)].map((m) => Number(m[1])))];
}

const scripts = Object.keys(LUA_SCRIPTS) as LuaScriptName[];
const listed = scripts.flatMap((script) => headerFailures(script).map((code) => ({ script, code })));

/** Everything a caller may pass, so every status can build its error. */
const context: ScriptErrorContext = {
  subject: "Test.method",
  id: "hold-1",
  conflict: () => new IdempotencyConflictError({ id: "hold-1", existingHash: "a", incomingHash: "b" }),
  item: (index) => (index === 0 ? { record: { eventId: "e1", currency: "EUR" }, prefix: "0" } : undefined),
};

/** A failure reply with plausible fields after `code`: an item index 1, then a string. */
const replyOf = (code: number) => [code, 1, "USD"];
/** Fields that read as a string where a status needs one (-3 state, -7 owner, -10 field). */
const stringReplyOf = (code: number) => [code, "voided"];

/** The one error each status means, whichever script returns it. */
const EXPECTED: Record<
  keyof typeof LUA_STATUS,
  { type: abstract new (...args: never[]) => LatchError; code: string }
> = {
  "-1": { type: IdempotencyConflictError, code: "idempotency_conflict" },
  "-2": { type: LatchValidationError, code: "invalid_input" },
  "-3": { type: HoldAlreadyResolvedError, code: "hold_already_resolved" },
  "-4": { type: OverflowError, code: "overflow" },
  "-5": { type: LatchValidationError, code: "invalid_input" },
  "-6": { type: LatchValidationError, code: "invalid_input" },
  "-7": { type: QuotaUnavailableError, code: "quota_unavailable" },
  "-8": { type: CurrencyMismatchError, code: "currency_mismatch" },
  "-9": { type: QuotaUnavailableError, code: "quota_unavailable" },
  "-10": { type: LatchValidationError, code: "invalid_input" },
};

describe("scriptError (one status → error mapper for every script)", () => {
  it("has one status for each negative code the Lua headers list, and no other", () => {
    const codes = [...new Set(listed.map(({ code }) => String(code)))].sort();
    expect(Object.keys(LUA_STATUS).sort()).toEqual(codes);
  });

  it.each(listed)("maps $script's status $code to its one error", ({ script, code }) => {
    const key = String(code) as keyof typeof LUA_STATUS;
    const reply = code === -3 || code === -7 || code === -10 ? stringReplyOf(code) : replyOf(code);
    const error = scriptError(script, reply, context);
    expect(error).toBeInstanceOf(EXPECTED[key].type);
    expect(error.code).toBe(EXPECTED[key].code);
    expect(isFailure(reply)).toBe(true);
  });

  it("names what the caller passed: the subject, the hold, the batch item's path", () => {
    const unknown = scriptError("void", [-2], context);
    expect(unknown.message).toContain("Test.method");
    const resolved = scriptError("commit", [-3, "voided"], context) as HoldAlreadyResolvedError;
    expect([resolved.holdId, resolved.state]).toEqual(["hold-1", "voided"]);
    const overflow = scriptError("counterAdd", [-4, "9007199254740991"], context);
    expect(overflow.message).toContain("quantity");
    expect(scriptError("commit", [-4], context).message).toContain("actual");
    expect(scriptError("putMany", [-5, 1], context).message).toContain("0.supersedes");
    const mismatch = scriptError("putMany", [-8, 1, "USD"], context) as CurrencyMismatchError;
    expect([mismatch.path, mismatch.expected, mismatch.actual]).toEqual(["0.currency", "USD", "EUR"]);
  });

  it("answers corrupt_record for an unknown status, a status the script does not list, or a bad field", () => {
    const corrupt = [
      scriptError("commit", [-99], context),
      scriptError("reserve", [7, "1"], context),
      scriptError("saveCursor", [-2], context), // a real status, but not one saveCursor returns
      scriptError("commit", [-3, 42], context), // the state must be a string
      scriptError("putMany", [-5, 9], context), // no item 9 in the batch
      scriptError("commit", [-1, "5"], { subject: "Test.method", id: "hold-1" }), // no conflict builder
      scriptError("void", ["not a code"], context),
    ];
    for (const error of corrupt) {
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect(error.code).toBe("corrupt_record");
    }
  });

  it("tells failures from successes", () => {
    expect(isFailure([-1, "5"])).toBe(true);
    for (const success of ["42", 42, [], [0, "5"], [1], ["100", "0", "0"], [1, 0, 1]]) {
      expect(isFailure(success)).toBe(false);
    }
  });
});
