import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.invalid_input");

export interface ValidationIssue {
  /** Dotted path of the bad field, e.g. `meters.input_tokens` or `usage.prompt_tokens_details.cached_tokens`. */
  path: string;
  message: string;
}

/**
 * `invalid_input`: the caller handed Latch something malformed. `issues` lists every bad
 * field by path; the message names the first one and counts the rest. Received values are
 * never echoed.
 */
export class LatchValidationError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "invalid_input";
  readonly issues: readonly ValidationIssue[];
  /** What was being validated, e.g. `UsageObservation` or `OpenAI chat usage`. */
  readonly subject: string;

  constructor({ subject, issues, cause }: { subject: string; issues: ValidationIssue[]; cause?: unknown }) {
    const first = issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    const head = first ? `${first.path === "" ? "(root)" : first.path}: ${first.message}` : "invalid";
    super({ code: "invalid_input", message: `Invalid ${subject}: ${head}${more}`, cause });
    this.name = "LatchValidationError";
    this.subject = subject;
    this.issues = issues;
  }

  /** One-issue shorthand. */
  static at(subject: string, path: string, message: string): LatchValidationError {
    return new LatchValidationError({ subject, issues: [{ path, message }] });
  }

  static override isInstance(error: unknown): error is LatchValidationError {
    return LatchError.hasMarker(error, marker);
  }
}
