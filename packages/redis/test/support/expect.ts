import { LatchError, type LatchErrorCode } from "@latch/core";
import { expect } from "vitest";

/** Awaits `promise`, which must reject with a Latch error of `code`; returns that error. */
export async function expectLatchError(promise: Promise<unknown>, code: LatchErrorCode): Promise<LatchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e ?? new Error("rejected with nothing"),
  );
  if (error === undefined) expect.fail(`expected a rejection with code ${code}, but it resolved`);
  if (!LatchError.isInstance(error))
    expect.fail(`expected a LatchError with code ${code}, got ${String(error)}`);
  expect(error.code).toBe(code);
  return error;
}
