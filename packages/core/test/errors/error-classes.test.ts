import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, expectTypeOf, it, vi } from "vitest";
import type { LatchErrorClasses } from "../../src/adapter.js";
import { ADAPTER_ERROR_CODES } from "../../src/errors/error-classes.js";
import {
  AmbiguousModelError,
  CorruptRecordError,
  CurrencyMismatchError,
  ExportError,
  HighWatermarkError,
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  InvalidTierConfigError,
  NoPriceForMeterError,
  NoSnapshotForTierError,
  NoSnapshotInEffectError,
  OverflowError,
  PrivilegeExceededError,
  QuotaUnavailableError,
} from "../../src/errors/index.js";
import { LATCH_ERROR_CODES, LatchError, type LatchErrorCode, LatchValidationError } from "../../src/index.js";

type ErrorsModule = typeof import("../../src/errors/index.js");

/** A class of the errors module, found by code in a (possibly duplicate) copy of it. */
interface ErrorClass<C extends keyof LatchErrorClasses> {
  name: string;
  isInstance(error: unknown): error is LatchErrorClasses[C];
}

/**
 * Each code's class and one instance of it, built from a copy of the module. Typed by
 * `LatchErrorClasses`, so a class added there without a case here does not compile.
 */
const CASES: {
  [C in keyof LatchErrorClasses]: {
    of(m: ErrorsModule): ErrorClass<C>;
    make(m: ErrorsModule): LatchErrorClasses[C];
  };
} = {
  invalid_input: {
    of: (m) => m.LatchValidationError,
    make: (m) => m.LatchValidationError.at("UsageObservation", "meters.input_tokens", "expected an integer"),
  },
  no_price_for_meter: {
    of: (m) => m.NoPriceForMeterError,
    make: (m) => new m.NoPriceForMeterError({ meter: "input_tokens", snapshotId: "s1" }),
  },
  no_snapshot_in_effect: {
    of: (m) => m.NoSnapshotInEffectError,
    make: (m) => new m.NoSnapshotInEffectError({ billableModel: "gpt-x", at: "2026-03-01T00:00:00.000Z" }),
  },
  no_snapshot_for_tier: {
    of: (m) => m.NoSnapshotForTierError,
    make: (m) => new m.NoSnapshotForTierError({ billableModel: "gpt-x", tier: "priority" }),
  },
  ambiguous_model: {
    of: (m) => m.AmbiguousModelError,
    make: (m) =>
      new m.AmbiguousModelError({ billableModel: "gpt-x", rule: "prefix", candidates: ["a", "b"] }),
  },
  invalid_tier_config: {
    of: (m) => m.InvalidTierConfigError,
    make: (m) => new m.InvalidTierConfigError({ snapshotId: "s1", path: "tiers.0", reason: "gap" }),
  },
  currency_mismatch: {
    of: (m) => m.CurrencyMismatchError,
    make: (m) => new m.CurrencyMismatchError({ expected: "USD", actual: "EUR", eventId: "e1" }),
  },
  overflow: {
    of: (m) => m.OverflowError,
    make: (m) => new m.OverflowError({ path: "quantity", reason: "exceeds 2^53-1" }),
  },
  idempotency_conflict: {
    of: (m) => m.IdempotencyConflictError,
    make: (m) => new m.IdempotencyConflictError({ id: "e1", existingHash: "h1", incomingHash: "h2" }),
  },
  quota_unavailable: {
    of: (m) => m.QuotaUnavailableError,
    make: (m) => new m.QuotaUnavailableError({ reason: "timeout" }),
  },
  corrupt_record: {
    of: (m) => m.CorruptRecordError,
    make: (m) => new m.CorruptRecordError({ id: "r1", reason: "hash differs" }),
  },
  hold_already_resolved: {
    of: (m) => m.HoldAlreadyResolvedError,
    make: (m) => new m.HoldAlreadyResolvedError({ holdId: "h1", state: "committed" }),
  },
  export_failed: {
    of: (m) => m.ExportError,
    make: (m) => new m.ExportError({ kind: "connection", reason: "reset" }),
  },
  high_watermark: {
    of: (m) => m.HighWatermarkError,
    make: (m) =>
      new m.HighWatermarkError({ ledgerId: "l1", highWatermark: "2026-03-01T00:00:00.000Z", field: "at" }),
  },
  privilege_exceeded: {
    of: (m) => m.PrivilegeExceededError,
    make: (m) =>
      new m.PrivilegeExceededError({ field: "quota.limit", reason: "must not exceed this API key's quota" }),
  },
};

const CODES = Object.keys(CASES) as (keyof LatchErrorClasses)[];

/** A second copy of the errors module, as a second install of `@latch/core` would load it. */
async function loadCopy(): Promise<ErrorsModule> {
  vi.resetModules();
  return import("../../src/errors/index.js");
}

const here = await import("../../src/errors/index.js");
const copy = await loadCopy();

describe.each(CODES)("the %s error class", (code) => {
  const Class = CASES[code].of(here);
  const CopyClass = CASES[code].of(copy);
  const error = CASES[code].make(here);
  const fromCopy = CASES[code].make(copy);

  it("carries its listed code and its class name, and is a LatchError", () => {
    expect(LATCH_ERROR_CODES).toContain(code);
    expect(error.code).toBe(code);
    expect(error.name).toBe(Class.name);
    expect(error).toBeInstanceOf(Error);
    expect(LatchError.isInstance(error)).toBe(true);
    expect(Class.isInstance(error)).toBe(true);
  });

  it("recognises an instance from a duplicate copy of the package, where instanceof cannot", () => {
    expect(CopyClass).not.toBe(Class);
    expect(fromCopy).not.toBeInstanceOf(Class as unknown as abstract new () => unknown);
    expect(Class.isInstance(fromCopy)).toBe(true);
    expect(CopyClass.isInstance(error)).toBe(true);
    expect(LatchError.isInstance(fromCopy)).toBe(true);
    expect(copy.LatchError.isInstance(error)).toBe(true);
    expect(LatchError.is(fromCopy, code)).toBe(true);
    expect(copy.LatchError.is(error, code)).toBe(true);
  });

  it("is told apart from every other class, from plain errors and from look-alikes", () => {
    for (const other of CODES) {
      if (other === code) continue;
      expect(CASES[other].of(here).isInstance(error)).toBe(false);
      expect(CASES[other].of(here).isInstance(fromCopy)).toBe(false);
      expect(LatchError.is(error, other)).toBe(false);
    }
    const lookAlike = Object.assign(new Error(error.message), { code, name: error.name });
    for (const value of [lookAlike, { code }, new Error("x"), null, undefined, code, 0]) {
      expect(Class.isInstance(value)).toBe(false);
      expect(LatchError.isInstance(value)).toBe(false);
      expect(LatchError.is(value, code)).toBe(false);
    }
  });
});

describe("LatchError.is", () => {
  it("narrows to the class of the code, so its context fields are typed", () => {
    const caught: unknown = new IdempotencyConflictError({
      id: "e1",
      existingHash: "h1",
      incomingHash: "h2",
    });
    if (!LatchError.is(caught, "idempotency_conflict")) expect.fail("not narrowed");
    expectTypeOf(caught).toEqualTypeOf<IdempotencyConflictError>();
    expect([caught.id, caught.existingHash, caught.incomingHash]).toEqual(["e1", "h1", "h2"]);

    const invalid: unknown = LatchValidationError.at("S", "a.b", "bad");
    if (!LatchError.is(invalid, "invalid_input")) expect.fail("not narrowed");
    expectTypeOf(invalid).toEqualTypeOf<LatchValidationError>();
    expect(invalid.issues).toEqual([{ path: "a.b", message: "bad" }]);

    expectTypeOf<Parameters<typeof LatchError.is>[1]>().toEqualTypeOf<LatchErrorCode>();
  });

  it("narrows a code whose class an adapter declares to a LatchError with that code until the adapter is imported", () => {
    const busy: unknown = undefined;
    if (LatchError.is(busy, "store_busy")) {
      expectTypeOf(busy).toEqualTypeOf<LatchError & { readonly code: "store_busy" }>();
    }
    expect(LatchError.is(busy, "store_busy")).toBe(false);
  });

  it("each class's isInstance narrows to that class", () => {
    const caught: unknown = new HoldAlreadyResolvedError({ holdId: "h1", state: "voided" });
    if (!HoldAlreadyResolvedError.isInstance(caught)) expect.fail("not narrowed");
    expectTypeOf(caught).toEqualTypeOf<HoldAlreadyResolvedError>();
    expectTypeOf(caught.code).toEqualTypeOf<"hold_already_resolved">();
    expect(caught.state).toBe("voided");
  });

  it("keeps isRetryable as each class sets it", () => {
    expect(new QuotaUnavailableError({ reason: "x" }).isRetryable).toBe(true);
    expect(new ExportError({ kind: "rate_limited", reason: "x" }).isRetryable).toBe(true);
    expect(new ExportError({ kind: "auth", reason: "x" }).isRetryable).toBe(false);
    expect(new CorruptRecordError({ id: "r", reason: "x" }).isRetryable).toBe(false);
  });
});

describe("the code list and the class map", () => {
  it("agree: every listed code has one class, in core or in the adapter named for it", () => {
    const adapterCodes = Object.keys(ADAPTER_ERROR_CODES);
    expect([...CODES, ...adapterCodes].sort()).toEqual([...LATCH_ERROR_CODES].sort());
    expect(CODES.filter((code) => adapterCodes.includes(code))).toEqual([]);
    expect(new Set(LATCH_ERROR_CODES).size).toBe(LATCH_ERROR_CODES.length);
    // The same, for the types: the map's keys are the codes with a core class, and each
    // class's `code` is its key.
    expectTypeOf<Exclude<LatchErrorCode, keyof LatchErrorClasses>>().toEqualTypeOf<
      keyof typeof ADAPTER_ERROR_CODES
    >();
    expectTypeOf<{ [C in keyof LatchErrorClasses]: LatchErrorClasses[C]["code"] }>().toEqualTypeOf<{
      [C in keyof LatchErrorClasses]: C;
    }>();
  });

  it("every class keeps its public name", () => {
    const classes = [
      AmbiguousModelError,
      CorruptRecordError,
      CurrencyMismatchError,
      ExportError,
      HighWatermarkError,
      HoldAlreadyResolvedError,
      IdempotencyConflictError,
      InvalidTierConfigError,
      LatchValidationError,
      NoPriceForMeterError,
      NoSnapshotForTierError,
      NoSnapshotInEffectError,
      OverflowError,
      PrivilegeExceededError,
      QuotaUnavailableError,
    ];
    expect(classes.map((c) => c.name).sort()).toEqual(CODES.map((code) => CASES[code].of(here).name).sort());
  });

  it("no package throws a bare LatchError: each code is thrown by its class", () => {
    const packages = join(import.meta.dirname, "../../..");
    const bare: string[] = [];
    const scan = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) scan(path);
        else if (entry.name.endsWith(".ts") && /\bnew LatchError\(/.test(readFileSync(path, "utf8"))) {
          bare.push(path.slice(packages.length + 1));
        }
      }
    };
    for (const pkg of readdirSync(packages)) {
      const src = join(packages, pkg, "src");
      try {
        scan(src);
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ENOENT") throw error;
      }
    }
    expect(bare).toEqual([]);
  });
});
