/** The observations of the shared-spool test, built the same way by workers and the checker. */
import type { UsageObservationInput } from "../../../src/index.js";

export function observationOf(worker: number, i: number): UsageObservationInput {
  return {
    eventId: `w${worker}-${i}`,
    subject: { tenantId: `tenant-${worker}` },
    meters: { input_tokens: 1000 + i, output_tokens: 10 + worker },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
  };
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
