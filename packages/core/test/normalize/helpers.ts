import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { LatchError, LatchValidationError } from "../../src/errors/index.js";
import { thrown } from "../support.js";

/** Parses `test/fixtures/providers/<name>.json`. */
export function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}.json`, import.meta.url), "utf8"));
}

/** `value[k0][k1]…`, failing the test when a step is missing: documents where usage lives. */
export function at(value: unknown, ...path: ReadonlyArray<string | number>): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null || !(key in current)) {
      throw new Error(`fixture has no ${path.join(".")}`);
    }
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** A plain object view of a fixture value (for merging stream usages). */
export function record(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new Error("expected an object");
  return value as Record<string, unknown>;
}

/**
 * Runs `fn`, expects a `LatchValidationError` with code `invalid_input` and `subject`, and
 * returns the issue paths.
 */
export function validationPaths(fn: () => unknown, subject: string): string[] {
  const e = thrown(fn);
  expect(LatchError.isInstance(e)).toBe(true);
  expect(e).toBeInstanceOf(LatchValidationError);
  const err = e as LatchValidationError;
  expect(err.code).toBe("invalid_input");
  expect(err.subject).toBe(subject);
  expect(err.issues.length).toBeGreaterThan(0);
  return err.issues.map((i) => i.path);
}

/** The error thrown by `fn`, asserted to be a `LatchValidationError`. */
export function validationError(fn: () => unknown): LatchValidationError {
  const e = thrown(fn);
  expect(LatchError.isInstance(e)).toBe(true);
  expect(e).toBeInstanceOf(LatchValidationError);
  return e as LatchValidationError;
}
