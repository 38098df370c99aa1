/**
 * Exit codes of `latch`, stable for shell scripts:
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success (also `--help` and `--version`) |
 * | 1 | the command failed: a store, S3 or file error, bad data |
 * | 2 | usage error: an unknown command or flag, a missing argument, a bad flag value |
 * | 3 | `latch rate` finished but rejected some lines (outputs written; `--allow-rejects` exits 0) |
 * | 130 | interrupted (SIGINT / Ctrl-C): nothing partial was left behind |
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  rejected: 3,
  interrupted: 130,
} as const;

/** A bad flag or argument: exit code 2. The message names the flag (`--at: expected …`). */
export class UsageError extends Error {
  readonly exitCode = EXIT.usage;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The command ran and failed (a file, store or data problem): exit code 1. */
export class CommandError extends Error {
  readonly exitCode = EXIT.failure;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CommandError";
  }
}

/** The run was interrupted by SIGINT/SIGTERM: exit code 130. */
export class InterruptedError extends Error {
  readonly exitCode = EXIT.interrupted;
  constructor() {
    super("interrupted");
    this.name = "InterruptedError";
  }
}

/** `latch rate` rated what it could and rejected the rest: exit code 3 (outputs are written). */
export class RejectedLinesError extends Error {
  readonly exitCode = EXIT.rejected;
  constructor(message: string) {
    super(message);
    this.name = "RejectedLinesError";
  }
}
