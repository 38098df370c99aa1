import type { z } from "zod";
import { LatchValidationError, type ValidationIssue } from "../errors/index.js";
import {
  BUILTIN_METERS,
  type BuiltinMeter,
  isQuantity,
  type MeterSet,
  QuantitySchema,
} from "../schemas/meters.js";
import { canonicalServiceTier } from "../schemas/service-tier.js";
import { accepting, anyString, nullish, object } from "./fast-read.js";

/**
 * Helpers shared by the provider normalizers. Internal: not exported from the package.
 *
 * Conventions every normalizer follows:
 * - the payload is parsed with zod (unknown extra fields are tolerated and dropped), its
 *   schema built from the helpers here and in `fast-read.ts`, so that `parseFast` reads a
 *   plainly valid payload without zod;
 * - an optional count may be absent or `null` (providers and their SDKs send both) and then
 *   counts as 0; a required count must be a number;
 * - consistency checks run by hand afterwards and name the offending field by its
 *   provider-side path; messages never carry the received values.
 */

/** A required count. */
export const count = accepting(QuantitySchema, isQuantity);

/** An optional count: absent or `null` means 0. */
export const optionalCount = nullish(count);

/** An object of optional details (absent or `null` allowed, unknown fields tolerated). */
export function details<T extends z.ZodRawShape>(shape: T) {
  return nullish(object(shape));
}

/** The usage object itself (unknown fields tolerated). */
export function usageObject<T extends z.ZodRawShape>(shape: T) {
  return object(shape);
}

/** `value ?? 0` for optional counts. */
export function n(value: number | null | undefined): number {
  return value ?? 0;
}

/** A named part of a whole: the path used in issues, and its count. */
export type Part = readonly [path: string, value: number];

/**
 * Checks that `parts` fit inside `whole` (their sum ≤ the whole). Reports at most one issue,
 * at the first part where the running sum goes past the whole, so the path names a field.
 */
export function checkPartsWithin(issues: ValidationIssue[], whole: Part, parts: readonly Part[]): void {
  let running = 0n;
  const seen: string[] = [];
  for (const [path, value] of parts) {
    running += BigInt(value);
    if (value > 0) seen.push(path); // zero parts do not make the sum exceed; leave them out of the message
    if (value > 0 && running > BigInt(whole[1])) {
      const message =
        seen.length === 1 || BigInt(value) > BigInt(whole[1])
          ? `must not exceed ${whole[0]}`
          : `${seen.join(" + ")} must not exceed ${whole[0]}`;
      issues.push({ path, message });
      return;
    }
  }
}

/** Checks that a reported total equals the sum of its parts (exact, no float rounding). */
export function checkTotal(issues: ValidationIssue[], total: Part, parts: readonly Part[]): void {
  const sum = parts.reduce((acc, [, value]) => acc + BigInt(value), 0n);
  if (sum !== BigInt(total[1])) {
    issues.push({ path: total[0], message: `must equal ${parts.map(([path]) => path).join(" + ")}` });
  }
}

/** Throws a `LatchValidationError` when any consistency issue was found. */
export function throwIfIssues(subject: string, issues: ValidationIssue[]): void {
  if (issues.length > 0) throw new LatchValidationError({ subject, issues });
}

/**
 * The MeterSet for `values`: only non-zero meters, in the stable {@link BUILTIN_METERS} order,
 * frozen. Every value must already be a safe non-negative integer (the callers' checks ensure it).
 */
export function meterSet(subject: string, values: Partial<Record<BuiltinMeter, number>>): MeterSet {
  const out: Partial<Record<BuiltinMeter, number>> = {};
  for (const meter of BUILTIN_METERS) {
    const value = values[meter];
    if (value === undefined || value === 0) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      // Unreachable when the consistency checks hold; kept as a guard so no bad count escapes.
      throw LatchValidationError.at(subject, "", `derived ${meter} is not a non-negative integer ≤ 2^53-1`);
    }
    out[meter] = value;
  }
  return Object.freeze(out);
}

/** Runs `fn` and re-throws its `LatchValidationError` under `subject` with every path below `prefix`. */
export function underPrefix<T>(subject: string, prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof LatchValidationError)) throw error;
    throw new LatchValidationError({
      subject,
      issues: error.issues.map((i) => ({
        path: i.path ? `${prefix}.${i.path}` : prefix,
        message: i.message,
      })),
      cause: error,
    });
  }
}

/** A provider's `service_tier` string (absent or `null` allowed). */
export const optionalTier = nullish(anyString);

/**
 * The tier an OpenAI-shaped response body reports in `service_tier` (canonical name), or
 * `undefined` when it reports none. `auto` is a request value ("the service tier configured in
 * the Project settings"), not a processing mode: OpenAI answers with "the processing mode
 * actually used to serve the request" (API reference, `service_tier`), so a body that echoes
 * `auto` — OpenRouter's Responses API does, as do OpenAI's own early stream events — has not
 * said which tier served the call. It is treated like an absent tier, which the caller may
 * declare (`observation.model.tier`).
 */
export function reportedOpenAITier(reported: string | null | undefined): string | undefined {
  if (!reported || reported.toLowerCase() === "auto") return undefined;
  return canonicalServiceTier(reported);
}

/** Adds parts that the callers' checks keep small; a sum past 2^53-1 is reported at `path`. */
export function safeSum(issues: ValidationIssue[], path: string, ...parts: number[]): number {
  const sum = parts.reduce((acc, v) => acc + v, 0);
  if (!Number.isSafeInteger(sum)) {
    issues.push({ path, message: "the sum of the counts exceeds 2^53-1" });
    return 0;
  }
  return sum;
}
