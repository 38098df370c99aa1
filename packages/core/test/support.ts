import type { MeterSet, PriceSnapshotInput, UsageObservation } from "../src/index.js";

/** A valid observation with the given meters; override any field. */
export function observation(meters: MeterSet, overrides: Partial<UsageObservation> = {}): UsageObservation {
  return {
    eventId: "req-1:0:openai",
    subject: { tenantId: "acme" },
    meters,
    model: { billableModel: "test-model" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
    ...overrides,
  };
}

/** A valid snapshot for `test-model` in USD from 2026-01-01; override any field. */
export function snapshot(overrides: Partial<PriceSnapshotInput> = {}): PriceSnapshotInput {
  return {
    snapshotId: "snap-1",
    model: { billableModel: "test-model" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {},
    ...overrides,
  };
}

export const ctx = { ratedAt: "2026-03-01T12:00:05Z" };

/** Calls `fn` and returns what it threw (fails the test when it does not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}
