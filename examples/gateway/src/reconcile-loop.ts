/**
 * Commits the quota holds whose settle was lost: `latch.reconcileQuota()` once at start (a
 * previous process may have died between a call's record and its settle) and then every
 * `everyMs`. The gateway settles each hold itself just after the response; when that settle
 * fails (the quota store away: `settle_failed`, `{ settled: false }`) or never runs (the
 * process died), the hold would otherwise stay open until it expires and the call would not
 * count against the quota. The record names its hold (`record(input, { hold })`), so the run
 * commits it with the record's units; a hold the gateway already settled is committed again
 * with the same units, which charges nothing more.
 *
 * Runs never overlap (the next one is scheduled when the last ended); a failed run is logged
 * and the loop goes on (its cursor was not saved, so the next run retries it). `stop()` ends the
 * loop and waits for a run in progress.
 */
import type { Latch } from "@latch/core";

/** The longest interval: Node's timers hold at most 2^31 - 1 ms (longer ones fire after 1 ms). */
export const MAX_RECONCILE_EVERY_MS = 2_147_483_647;

export interface ReconcileLoop {
  /** Ends the loop; resolves once a run in progress has ended. */
  stop(): Promise<void>;
}

export function startReconcileLoop(
  latch: Pick<Latch, "reconcileQuota">,
  options: { everyMs?: number; onError?: (error: unknown) => void } = {},
): ReconcileLoop {
  const everyMs = options.everyMs ?? 60_000;
  if (!Number.isSafeInteger(everyMs) || everyMs < 1 || everyMs > MAX_RECONCILE_EVERY_MS)
    throw new Error(
      `reconcile interval (everyMs): expected an integer of milliseconds from 1 to ${MAX_RECONCILE_EVERY_MS}, got ${everyMs}`,
    );
  const onError =
    options.onError ?? ((error: unknown) => console.error("[gateway] reconcileQuota failed:", error));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const run = () => {
    timer = undefined;
    running = latch
      .reconcileQuota()
      .then(
        () => {},
        (error: unknown) => {
          try {
            onError(error);
          } catch {
            // a logger that throws must not end the loop
          }
        },
      )
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(run, everyMs);
      });
  };
  run();

  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
