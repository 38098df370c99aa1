import { z } from "zod";
import { parseWith } from "../schemas/parse.js";

/**
 * Retention of resolved holds, the same rule on every backend (quota and credit holds, in
 * memory, Postgres and Redis):
 *
 * - A hold **resolves** when it is committed or voided, or when it expires unresolved (at its
 *   expiry). A late commit of an expired hold resolves it again, at the commit.
 * - Its record is kept `holdRetentionMs` after it last resolved, so that a retried reserve,
 *   commit or void within that time is answered as the first one was (idempotent), and a late
 *   commit of an expired hold still charges.
 * - After that it is purged and the holdId is unknown again: a commit or void throws
 *   `invalid_input` naming `holdId` — a retry that comes too late **fails loudly and never
 *   charges twice** — and a reserve with that holdId is a new hold.
 *
 * So choose a retention longer than any retry or reconciliation can come late
 * (`reconcileQuota` commits the holds of calls recorded since its last run: run it more often
 * than the retention).
 */
export const HoldRetentionMsSchema = z
  .number({ error: "expected a whole number of milliseconds > 0" })
  .int({ error: "expected a whole number of milliseconds > 0" })
  .min(1, { error: "expected a whole number of milliseconds > 0" })
  .max(Number.MAX_SAFE_INTEGER, { error: "expected a whole number of milliseconds > 0" });

/** The in-memory stores' default retention of resolved holds: one hour. */
export const DEFAULT_MEMORY_HOLD_RETENTION_MS = 60 * 60 * 1_000;

/** `holdRetentionMs` of a store's options, or `fallback`; bad values are `invalid_input` naming it. */
export function parseHoldRetentionMs(value: unknown, fallback: number, subject: string): number {
  return value === undefined ? fallback : parseWith(HoldRetentionMsSchema, value, subject, "holdRetentionMs");
}
