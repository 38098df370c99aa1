/**
 * `pnpm bench` (second part): `latch.record()` end to end on the embedded default (in-memory
 * stores), events/s, and the facade's per-call overhead (p50/p99) against calling the rating
 * engine alone on the same observations, in the same run.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createLatch,
  DefaultRatingEngine,
  InMemoryPricingSource,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "@latch/core";
import { reportRow } from "./report.js";
import { makeUsages, PROVIDER, SNAPSHOTS } from "./workload.js";

const N = Number(process.env.BENCH_EVENTS ?? 20_000);
const usages = makeUsages(N, 7);
const snapshots = Object.values(SNAPSHOTS) as unknown as PriceSnapshot[];
const dir = mkdtempSync(join(tmpdir(), "latch-bench-"));

const observationInputs = usages.map((u, i) => ({
  eventId: `rec-${i}:0:${PROVIDER[u.model]}`,
  subject: { tenantId: `tenant-${i % 50}` },
  meters: u.meters,
  model: { billableModel: u.model },
  provider: { providerId: PROVIDER[u.model] as string },
  source: { kind: "provider_reported" as const },
  outcome: { kind: "success" as const },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
}));

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function embeddedLatch(spool: string) {
  return createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource(snapshots),
    // Latch's default clock (`() => new Date()`), as the embedded default runs: the rated records
    // are not compared here, and a clock that parsed a date string per call (~110 ns more than
    // the default's `new Date()`) would charge record() for the bench's clock, not Latch's.
    spoolPath: join(dir, spool),
  });
}

async function main() {
  // Warm-up, as the engine gets below (its first round is not measured): a throwaway latch
  // records the same calls under other eventIds, so both sides are measured with the JIT warm
  // (at 5,000 events a cold record() spends most of its calls being compiled).
  const warm = embeddedLatch("warm-up.jsonl");
  await warm.ready();
  for (const [i, input] of observationInputs.entries()) {
    const result = await warm.record({ ...input, eventId: `warm-${i}:0:${input.provider.providerId}` });
    if (result.status !== "rated") throw new Error(`warm-up event ${i} was ${result.status}`);
  }
  await warm.close();

  const latch = embeddedLatch("spool.jsonl");
  await latch.ready();

  // Facade: parse + append + resolve + rate + put + markPriced, one awaited call at a time.
  const facade = new Float64Array(N);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const start = process.hrtime.bigint();
    const result = await latch.record(observationInputs[i] as (typeof observationInputs)[number]);
    facade[i] = Number(process.hrtime.bigint() - start) / 1e3;
    if (result.status !== "rated") throw new Error(`event ${i} was ${result.status}`);
  }
  const facadeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

  // Engine alone, on the same (already parsed) observations.
  const engine = new DefaultRatingEngine();
  const pricing = new InMemoryPricingSource(snapshots);
  const parsed: UsageObservation[] = observationInputs.map((o) => parseObservation(o));
  const alone = new Float64Array(N);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < N; i++) {
      const obs = parsed[i] as UsageObservation;
      const start = process.hrtime.bigint();
      engine.rate(obs, pricing.require(obs.model, obs.timing.completedAt), {
        ratedAt: "2026-03-01T12:00:05Z",
      });
      alone[i] = Number(process.hrtime.bigint() - start) / 1e3;
    }
  }
  facade.sort();
  alone.sort();
  const fmt = (us: number) => `${us.toFixed(1)} µs`;
  console.log(`\nlatch.record() end to end on the embedded default, ${N.toLocaleString("en-US")} events`);
  console.log(`  events/s (sequential awaits):   ${Math.round(N / facadeSeconds).toLocaleString("en-US")}`);
  console.log(`  record()  p50 ${fmt(percentile(facade, 0.5))}  p99 ${fmt(percentile(facade, 0.99))}`);
  console.log(`  engine    p50 ${fmt(percentile(alone, 0.5))}  p99 ${fmt(percentile(alone, 0.99))}`);
  console.log(
    `  facade overhead per call: p50 ${fmt(percentile(facade, 0.5) - percentile(alone, 0.5))}, p99 ${fmt(percentile(facade, 0.99) - percentile(alone, 0.99))}`,
  );
  reportRow({
    area: "facade",
    metric: "latch.record() p50 / p99, embedded default",
    latch: `${fmt(percentile(facade, 0.5))} / ${fmt(percentile(facade, 0.99))}`,
    against: "rating engine alone, same observations",
    againstValue: `${fmt(percentile(alone, 0.5))} / ${fmt(percentile(alone, 0.99))}`,
    ratio: `${(percentile(facade, 0.5) / percentile(alone, 0.5)).toFixed(1)}× (p50)`,
  });
  await latch.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
