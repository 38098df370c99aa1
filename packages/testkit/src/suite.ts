import { afterAll } from "vitest";

/**
 * What every suite factory takes: how to get the object under test. Each suite adds only what
 * is its own (an `inspect` reader, `retention`, `propertyRuns`); the backend's name and its
 * set-up and tear-down are given once, to `runConformance`.
 */
export interface SuiteOptions<T> {
  /**
   * The object under test. Called before **every** test; tests use fresh, random ids, tenants,
   * accounts and keys, so several suites (and several test files) may share one backend.
   */
  create: () => Promise<T> | T;
}

/**
 * One contract's tests, ready to run against a backend: what `observationStoreSuite(…)` and the
 * other suite factories return, and what `runConformance` takes a list of. A backend's own
 * tests can be one too.
 */
export interface ConformanceSuite {
  /** The contract, e.g. `ObservationStore`: the title of the suite's describe blocks. */
  readonly name: string;
  /**
   * Registers the suite's tests in the current vitest scope, in describe blocks titled
   * `title` (or starting with it). Every test always runs; nothing turns one off.
   */
  readonly register: (title: string) => void;
}

/**
 * The options every `describe<Contract>` function took besides its suite's own.
 *
 * @deprecated Give the name, set-up and tear-down once to `runConformance` instead.
 */
export interface DescribeOptions {
  /** Shown in the test names, e.g. `postgres` or `memory`. */
  name: string;
  /** Runs once after the suite (close clients, drop the test schema). */
  cleanup?: () => Promise<void> | void;
}

/**
 * Registers `suite` the way the `describe<Contract>` functions always have: top-level describe
 * blocks titled `<Contract>: <name>`, `cleanup` after the tests of the scope it was called in.
 */
export function describeSuite(suite: ConformanceSuite, { name, cleanup }: DescribeOptions): void {
  suite.register(`${suite.name}: ${name}`);
  if (cleanup !== undefined) {
    afterAll(async () => {
      await cleanup();
    });
  }
}
