import { afterAll, beforeEach, describe } from "vitest";
import type { ConformanceSuite } from "./suite.js";

export interface ConformanceOptions {
  /** The backend, e.g. `postgres` or `redis cluster`: the describe block every suite runs in. */
  name: string;
  /**
   * Runs once, before the backend's first test (connect, migrate). Every test awaits it, so a
   * set-up that fails fails each test instead of skipping it (as a failing `beforeAll` would).
   * A promise it returns is awaited (its value is ignored), as is `teardown`'s.
   */
  setup?: () => unknown;
  /** Runs once, after the backend's last test (close clients, drop the test schema). */
  teardown?: () => unknown;
  /** What to run against the backend, e.g. `[observationStoreSuite({ create }), …]`. */
  suites: readonly ConformanceSuite[];
}

/** How long the first test waits for `setup` (starting PGlite or a cluster takes seconds). */
const SETUP_TIMEOUT_MS = 120_000;

/**
 * Runs conformance suites against one backend, under its name: `setup` once before the first
 * test, every suite's tests (each always runs: there is no option to skip one), `teardown` once
 * after the last.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [
 *     observationStoreSuite({ create: () => new MemoryObservationStore() }),
 *     quotaReservatorSuite({ create: () => new MemoryQuotaReservator() }),
 *   ],
 * });
 */
export function runConformance({ name, setup, teardown, suites }: ConformanceOptions): void {
  if (suites.length === 0) throw new Error("runConformance: no suites to run");
  describe(name, () => {
    let ready: Promise<void> | undefined;
    if (setup !== undefined) {
      beforeEach(async () => {
        ready ??= Promise.resolve()
          .then(setup)
          .then(() => undefined);
        await ready;
      }, SETUP_TIMEOUT_MS);
    }

    afterAll(async () => {
      // A set-up still running finishes first; the tests have reported its failure.
      await ready?.catch(() => undefined);
      await teardown?.();
    }, SETUP_TIMEOUT_MS);

    for (const suite of suites) suite.register(suite.name);
  });
}
