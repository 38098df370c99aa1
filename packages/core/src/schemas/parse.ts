import type { z } from "zod";
import { LatchValidationError, type ValidationIssue } from "../errors/index.js";

/** Renders a zod issue path as `a.b.0.c`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === "symbol" ? p.toString() : String(p))).join(".");
}

/** zod issues → our issues; messages only, never the received value. */
export function toIssues(error: z.ZodError, prefix = ""): ValidationIssue[] {
  return error.issues.map((issue) => {
    const path = formatPath(issue.path);
    return { path: prefix && path ? `${prefix}.${path}` : prefix || path, message: issue.message };
  });
}

/**
 * Parses `value` with `schema`, or throws a `LatchValidationError` (`invalid_input`) whose
 * issues name each bad field by path. The one way every boundary in Latch validates input.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  subject: string,
  prefix = "",
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new LatchValidationError({ subject, issues: toIssues(result.error, prefix), cause: result.error });
}
