import { LatchError, type LatchErrorCode } from "@latch/core";
import { expect } from "vitest";

/** Awaits `promise`, which must reject with a Latch error of `code`; returns that error. */
export async function expectLatchError(promise: Promise<unknown>, code: LatchErrorCode): Promise<LatchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e ?? new Error("rejected with nothing"),
  );
  if (error === undefined) expect.fail(`expected a rejection with code ${code}, but it resolved`);
  if (!LatchError.isInstance(error)) {
    expect.fail(`expected a LatchError with code ${code}, got ${String(error)}`);
  }
  expect(error.code).toBe(code);
  return error;
}

/**
 * Awaits `promise`, which must reject with `invalid_input` whose issues name `field`: an
 * issue path equal to it or ending in `.<field>` (batches prefix the index, `2.meters.x`).
 */
export async function expectInvalidInput(promise: Promise<unknown>, field: string): Promise<void> {
  const error = await expectLatchError(promise, "invalid_input");
  const issues: unknown = (error as { issues?: unknown }).issues;
  const paths = Array.isArray(issues)
    ? issues.map((issue: unknown) => String((issue as { path?: unknown }).path))
    : [];
  expect(
    paths.some((path) => path === field || path.endsWith(`.${field}`)),
    `issue paths [${paths.join(", ")}] should name ${field}`,
  ).toBe(true);
}

/** Resolves after `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets other pending work (timers, I/O, other promise chains) run. */
export function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An already-aborted signal. */
export function abortedSignal(): AbortSignal {
  const controller = new AbortController();
  controller.abort();
  return controller.signal;
}

/** Deterministic pseudo-random integers in [min, max] (mulberry32), for reproducible load. */
export function seededIntegers(seed: number): (min: number, max: number) => number {
  let state = seed >>> 0;
  return (min, max) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return min + Math.floor(unit * (max - min + 1));
  };
}
