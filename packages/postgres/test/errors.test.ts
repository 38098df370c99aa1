import { LATCH_ERROR_CODES, LatchError } from "@latch/core";
import { QuotaUnavailableError } from "@latch/core/errors";
import { describe, expect, expectTypeOf, it, vi } from "vitest";
import {
  PostgresBusyError,
  PostgresQuota,
  type Queryable,
  REQUIRED_SCHEMA_VERSION,
  SchemaIncompatibleError,
  SchemaNotMigratedError,
} from "../src/index.js";

// The errors @latch/postgres declares: LatchError classes with listed codes, recognised across
// duplicate copies of the package, and what LatchError.is narrows their codes to.

type PostgresModule = typeof import("../src/index.js");

const CASES = {
  schema_not_migrated: {
    of: (m: PostgresModule) => m.SchemaNotMigratedError,
    make: (m: PostgresModule) => new m.SchemaNotMigratedError({ schema: "latch", found: 0, required: 7 }),
  },
  schema_incompatible: {
    of: (m: PostgresModule) => m.SchemaIncompatibleError,
    make: (m: PostgresModule) =>
      new m.SchemaIncompatibleError({ schema: "latch", found: 9, required: 7, compatibleFrom: 9 }),
  },
  store_busy: {
    of: (m: PostgresModule) => m.PostgresBusyError,
    make: (m: PostgresModule) => new m.PostgresBusyError({ reason: "lock_timeout", sqlState: "55P03" }),
  },
} as const;

const CODES = Object.keys(CASES) as (keyof typeof CASES)[];

const here = await import("../src/index.js");
vi.resetModules();
const copy: PostgresModule = await import("../src/index.js");

describe.each(CODES)("the %s error class", (code) => {
  const Class = CASES[code].of(here);
  const error = CASES[code].make(here);
  const fromCopy = CASES[code].make(copy);

  it("is a LatchError with its listed code and its class name", () => {
    expect(LATCH_ERROR_CODES).toContain(code);
    expect(error.code).toBe(code);
    expect(error.name).toBe(Class.name);
    expect(LatchError.isInstance(error)).toBe(true);
    expect(LatchError.is(error, code)).toBe(true);
    expect(Class.isInstance(error)).toBe(true);
  });

  it("recognises an instance from a duplicate copy of the package, where instanceof cannot", () => {
    expect(CASES[code].of(copy)).not.toBe(Class);
    expect(fromCopy instanceof Class).toBe(false);
    expect(Class.isInstance(fromCopy)).toBe(true);
    expect(LatchError.is(fromCopy, code)).toBe(true);
  });

  it("is told apart from the other classes and from a look-alike", () => {
    for (const other of CODES) {
      if (other !== code) expect(CASES[other].of(here).isInstance(error)).toBe(false);
    }
    expect(Class.isInstance(Object.assign(new Error(error.message), { code }))).toBe(false);
  });
});

describe("the errors keep their fields and messages", () => {
  it("SchemaNotMigratedError and SchemaIncompatibleError are deployment errors: not retryable", () => {
    const behind = new SchemaNotMigratedError({ schema: "latch", found: 0, required: 7 });
    expect(behind).toMatchObject({ schema: "latch", found: 0, required: 7, isRetryable: false });
    expect(behind.message).toBe(
      'Schema "latch" is at migration 0; @latch/postgres needs 7: run migrate(db, { schema: "latch" })',
    );
    const ahead = new SchemaIncompatibleError({ schema: "latch", found: 9, required: 7, compatibleFrom: 9 });
    expect(ahead).toMatchObject({ found: 9, required: 7, compatibleFrom: 9, isRetryable: false });
    expect(ahead.message).toBe(
      'Schema "latch" is at migration 9, which needs @latch/postgres for schema 9 or newer; this one is for 7: upgrade the package',
    );
  });

  it("PostgresBusyError is retryable and keeps the driver's error as its cause", () => {
    const cause = new Error("canceling statement due to lock timeout");
    const busy = new PostgresBusyError({ reason: "lock_timeout", sqlState: "55P03", cause });
    expect(busy).toMatchObject({ reason: "lock_timeout", sqlState: "55P03", isRetryable: true });
    expect(busy.cause).toBe(cause);
    expect(busy.message).toBe(
      "The database gave up on a Latch transaction (lock_timeout, SQLSTATE 55P03); retry",
    );
  });

  it("LatchError.is narrows each code to its @latch/postgres class", () => {
    const caught: unknown = new PostgresBusyError({ reason: "deadlock", sqlState: "40P01" });
    if (!LatchError.is(caught, "store_busy")) expect.fail("not narrowed");
    expectTypeOf(caught).toEqualTypeOf<PostgresBusyError>();
    expect(caught.reason).toBe("deadlock");
    const behind: unknown = CASES.schema_not_migrated.make(here);
    if (LatchError.is(behind, "schema_not_migrated"))
      expectTypeOf(behind).toEqualTypeOf<SchemaNotMigratedError>();
    const ahead: unknown = CASES.schema_incompatible.make(here);
    if (LatchError.is(ahead, "schema_incompatible"))
      expectTypeOf(ahead).toEqualTypeOf<SchemaIncompatibleError>();
  });
});

/** A session answering the schema check with `version`, and failing the quota's statement with `fail`. */
function session(version: number, fail: string): Queryable {
  return {
    async query(text) {
      if (text.startsWith("SAVEPOINT")) throw Object.assign(new Error("no transaction"), { code: "25P01" });
      if (text.includes("latch_migrations")) return { rows: [{ v: version, f: null }], rowCount: 1 };
      if (text.includes("quota_")) throw Object.assign(new Error(`SQLSTATE ${fail}`), { code: fail });
      return { rows: [], rowCount: 0 };
    },
  };
}

describe("PostgresQuota, now that these are Latch errors", () => {
  it("still treats a busy database as an outage: reserve denies, commit throws quota_unavailable caused by it", async () => {
    const quota = new PostgresQuota(session(REQUIRED_SCHEMA_VERSION, "55P03"));
    expect(await quota.reserve({ holdId: "h", account: "a", amount: 1, ttlMs: 1_000 })).toEqual({
      granted: false,
      reason: "unavailable",
    });
    const error = await quota.commit("h", 1).catch((e: unknown) => e);
    expect(QuotaUnavailableError.isInstance(error)).toBe(true);
    expect(PostgresBusyError.isInstance((error as Error).cause)).toBe(true);
  });

  it("still throws a missing migration as it is: a deployment error, never unavailable", async () => {
    const quota = new PostgresQuota(session(0, "55P03"));
    const reserve = quota.reserve({ holdId: "h", account: "a", amount: 1, ttlMs: 1_000 });
    await expect(reserve).rejects.toBeInstanceOf(SchemaNotMigratedError);
    await expect(quota.commit("h", 1)).rejects.toMatchObject({ code: "schema_not_migrated" });
  });
});
