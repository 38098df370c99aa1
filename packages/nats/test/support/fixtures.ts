import { randomBytes } from "node:crypto";
import {
  InMemoryPricingSource,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  parseObservation,
  type UsageObservation,
} from "@latch/core";
import type { AppendResult } from "@latch/core/adapter";
import { connect, type NatsConnection } from "@nats-io/transport-node";

/** The server every test runs against; unreachable means the tests fail, never skip. */
export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A connection that gives up at once when the server is down (so a test fails, loudly). */
export function connectNats(): Promise<NatsConnection> {
  return connect({ servers: NATS_URL, timeout: 5_000 });
}

/** A stream name of its own for one test run. */
export function freshStream(label: string): string {
  return `T_${label}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** One snapshot: 2.50 USD per million input tokens, 10 USD per million output tokens. */
export function pricing(): InMemoryPricingSource {
  return new InMemoryPricingSource([
    {
      snapshotId: "test:gpt-4o:2026-01",
      model: { billableModel: "gpt-4o" },
      currency: "USD",
      effectiveFrom: "2026-01-01T00:00:00Z",
      prices: { input_tokens: { perMillion: "2.50" }, output_tokens: { perMillion: "10" } },
    },
  ]);
}

/** Each call: 1,000 input tokens (0.0025) + 200 output tokens (0.002) = 0.0045 USD. */
export const COST_PER_CALL = "0.0045";

export function observation(
  eventId: string,
  overrides: Partial<{ outputTokens: number }> = {},
): UsageObservation {
  return parseObservation({
    eventId,
    subject: { tenantId: "acme" },
    meters: { input_tokens: 1_000, output_tokens: overrides.outputTokens ?? 200 },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-02-14T09:30:00Z", completedAt: "2026-02-14T09:30:01Z" },
  });
}

/** Where summaries look: the one day every fixture observation completed in. */
export const DAY = { start: "2026-02-14T00:00:00Z", end: "2026-02-15T00:00:00Z", groupBy: [] };

/** The in-memory observation store, counting what each append did per eventId. */
export class CountingObservationStore extends MemoryObservationStore {
  readonly appended = new Map<string, number>();
  readonly alreadyExisting = new Map<string, number>();

  override async append(obs: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    const result = await super.append(obs, signal);
    const counts = result === "appended" ? this.appended : this.alreadyExisting;
    counts.set(obs.eventId, (counts.get(obs.eventId) ?? 0) + 1);
    return result;
  }
}

/** In-memory stores and the fixture pricing, for a worker or a latch: a counting store unless given one. */
export function memoryStores(): MemoryStores<CountingObservationStore>;
export function memoryStores<O extends MemoryObservationStore>(observations: O): MemoryStores<O>;
export function memoryStores(
  observations: MemoryObservationStore = new CountingObservationStore(),
): MemoryStores<MemoryObservationStore> {
  return { observations, rated: new MemoryRatedRecordStore(), pricing: pricing() };
}

export interface MemoryStores<O extends MemoryObservationStore> {
  observations: O;
  rated: MemoryRatedRecordStore;
  pricing: InMemoryPricingSource;
}

/** Polls `check` until it holds; fails after `timeoutMs` (generous: the machine is shared). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 45_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
