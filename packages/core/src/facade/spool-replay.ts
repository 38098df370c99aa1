import { parseObservation } from "../observation/parse.js";
import type { UsageObservation } from "../schemas/observation.js";
import { isCode } from "./error-code.js";
import { isCallerFault } from "./retry.js";
import type { Spool, SpoolSetAside } from "./spool.js";
import type { Warn } from "./types.js";

/** Appends an observation to the spool and says so (`spooled`): what every fail-open path does. */
export function spoolingTo(spool: Spool, warn: Warn): (obs: UsageObservation) => Promise<void> {
  return async (obs) => {
    await spool.append(obs);
    warn({
      code: "spooled",
      message: `observation ${obs.eventId} spooled to ${spool.path}`,
      eventId: obs.eventId,
    });
  };
}

export interface SpoolReplayDeps {
  spool: Spool;
  warn: Warn;
  /** Records a spooled observation again without spooling it (idempotent by eventId); throws on a store error. */
  replay: (obs: UsageObservation) => Promise<unknown>;
}

/**
 * `flushSpool()`: drains the spool (see `Spool`), recording each entry again. An invalid or
 * conflicting entry is set aside in `rejected/` with a warning, never dropped; a store error
 * stops the flush and leaves that entry and the rest of its segment spooled.
 */
export function createSpoolReplay({
  spool,
  warn,
  replay,
}: SpoolReplayDeps): () => Promise<{ replayed: number; skipped: number; remaining: number }> {
  function warnSetAside(aside: SpoolSetAside): void {
    const where = `spool ${aside.segment} line ${aside.line}`;
    const what = {
      torn: "is incomplete (torn by a crash)",
      not_json: "is not JSON",
      not_an_entry: `is not a spool entry${aside.detail === undefined ? "" : ` (${aside.detail})`}`,
      newer_version: "was written by a newer version of Latch",
      rejected: `was refused: ${aside.detail ?? ""}`,
    }[aside.reason];
    warn({
      code:
        aside.reason === "newer_version"
          ? "spool_newer_version"
          : aside.reason === "rejected"
            ? "spool_replay_failed"
            : "spool_torn_line",
      message: `${where} ${what}; moved to ${aside.movedTo}`,
      ...(aside.cause === undefined ? {} : { cause: aside.cause }),
    });
  }

  return async function flushSpool() {
    const report = await spool.drain(async (entry, at) => {
      let obs: UsageObservation;
      try {
        obs = parseObservation(entry);
      } catch (error) {
        return { rejected: "not a valid observation", cause: error };
      }
      try {
        await replay(obs);
        return "stored";
      } catch (error) {
        if (isCode(error, "idempotency_conflict"))
          return { rejected: `${obs.eventId} conflicts with the stored observation`, cause: error };
        // Input no replay can store (e.g. an ingest log refusing its size): set aside, named,
        // rather than stop every flush at it and hold back the entries spooled after it.
        if (isCallerFault(error))
          return { rejected: `${obs.eventId}: ${(error as Error).message}`, cause: error };
        warn({
          code: "spool_replay_failed",
          message: `replay stopped at ${obs.eventId} (${at.segment} line ${at.line}); it stays spooled`,
          eventId: obs.eventId,
          cause: error,
        });
        throw error;
      }
    }, warnSetAside);
    return { replayed: report.replayed, skipped: report.setAside, remaining: report.handedBack };
  };
}
