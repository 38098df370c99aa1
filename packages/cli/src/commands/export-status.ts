import { LatchError } from "@latch/core";
import type { ChangeLogHolder, ChangeLogStatus } from "@latch/core/adapter";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";
import { countFormat } from "../progress.js";
import { openStore } from "../stores.js";
import type { ExportStatusFlags } from "./export-command.js";

/** `850 ms`, `12.3 s`, `5 min 3 s`, `2 h 4 min`, `3 d 2 h`. */
export function formatAge(ms: number): string {
  if (ms < 1_000) return `${Math.floor(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)} h ${Math.floor((s % 3_600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3_600)} h`;
}

const versions = (n: number, capped = false) =>
  `${capped ? "at least " : ""}${countFormat.format(n)} version${n === 1 ? "" : "s"}`;

/**
 * One line naming what holds the log back, e.g. `transaction pid 4242 (application "psql",
 * user postgres, database billing), idle in transaction, open for 1 h 30 min since
 * 2026-03-02T09:00:00.000Z, xid 73112`.
 */
export function describeHolder(holder: ChangeLogHolder): string {
  switch (holder.by) {
    case "transaction": {
      const who = [
        holder.applicationName === undefined
          ? undefined
          : `application ${JSON.stringify(holder.applicationName)}`,
        holder.user === undefined ? undefined : `user ${holder.user}`,
        holder.database === undefined ? undefined : `database ${holder.database}`,
      ].filter((part) => part !== undefined);
      const parts = [`transaction pid ${holder.pid}${who.length > 0 ? ` (${who.join(", ")})` : ""}`];
      if (holder.state !== undefined) parts.push(holder.state);
      if (holder.ageMs !== undefined) {
        parts.push(
          `open for ${formatAge(holder.ageMs)}${holder.startedAt === undefined ? "" : ` since ${holder.startedAt}`}`,
        );
      }
      parts.push(`xid ${holder.xid}`);
      return parts.join(", ");
    }
    case "prepared_transaction":
      return `prepared transaction ${JSON.stringify(holder.gid)} (owner ${holder.owner}, database ${holder.database}), prepared ${formatAge(holder.ageMs)} ago at ${holder.startedAt}, xid ${holder.xid}`;
    case "unknown":
      return `transaction xid ${holder.xid} (no session shows it: it may have just ended)`;
  }
}

/** What to do about a holder: end it. */
export function remedy(holder: ChangeLogHolder): string {
  switch (holder.by) {
    case "transaction":
      return `end that transaction (COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend(${holder.pid}))`;
    case "prepared_transaction":
      return `COMMIT PREPARED or ROLLBACK PREPARED ${JSON.stringify(holder.gid)}`;
    case "unknown":
      return "run the status again";
  }
}

/**
 * `latch export status`: where the consumer stands in the change log (its cursor, the
 * versions ready to export, the versions stored but held back) and what holds the log back
 * (on Postgres the oldest transaction still running on the server: pid, application, state,
 * age). Read-only; exit 0 whatever it finds.
 */
export async function runExportStatus(flags: ExportStatusFlags, ctx: CliContext): Promise<void> {
  if (flags.consumer === "" || flags.consumer.length > 256)
    throw new UsageError("--consumer: expected 1–256 characters");
  const opened = await openStore(flags, ctx);
  let status: ChangeLogStatus | undefined;
  try {
    status = await opened.store.changeLogStatus?.({ consumer: flags.consumer }, ctx.signal);
  } catch (error) {
    if (LatchError.isInstance(error) && error.code === "invalid_input") throw new UsageError(error.message);
    throw new CommandError(`export status: ${(error as Error).message}`, { cause: error });
  } finally {
    await opened.close();
  }
  if (status === undefined) {
    throw new CommandError(`export status: ${opened.description} cannot report its change log's status`);
  }
  if (flags.json) {
    // `cursor: null` when none is saved (JSON has no undefined).
    ctx.stdout.write(
      `${JSON.stringify({ store: opened.description, ...status, cursor: status.cursor ?? null })}\n`,
    );
    return;
  }
  let out = `change log of ${opened.description}, consumer ${flags.consumer}\n`;
  out += `  cursor:  ${status.cursor ?? "none saved (an export starts at the beginning)"}\n`;
  out += `  ready:   ${versions(status.ready, status.capped)} to export now\n`;
  out += `  waiting: ${versions(status.waiting, status.capped)} stored but held back\n`;
  if (status.heldBack === undefined) {
    out += "  held back by: nothing\n";
  } else {
    out += `  held back by: ${describeHolder(status.heldBack)}\n`;
    out += `  versions committed after it began wait until it ends: ${remedy(status.heldBack)}\n`;
  }
  ctx.stdout.write(out);
}

/**
 * The note `latch export` prints after a run when versions are held back, or `undefined`
 * when none are.
 */
export function heldBackNote(status: ChangeLogStatus | undefined, exported: boolean): string | undefined {
  if (status === undefined || status.waiting === 0) return undefined;
  const n = status.waiting;
  const what = `${status.capped ? "at least " : ""}${countFormat.format(n)} ${exported ? "more " : ""}version${n === 1 ? "" : "s"} stored after the cursor ${n === 1 ? "is" : "are"} held back`;
  if (status.heldBack === undefined) {
    return `${what} by a transaction that has just ended: run latch export again\n`;
  }
  return `${what} by ${describeHolder(status.heldBack)}; ${status.waiting === 1 ? "it is" : "they are"} exported once it ends (latch export status)\n`;
}
