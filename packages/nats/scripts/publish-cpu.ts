/**
 * The gateway's CPU per publish: `js.publish` (what natsIngestLog used until 0.0.x: nats-core's
 * request, with and without `noAsyncTraces`) against natsIngestLog's own reply subscription, in
 * the same run, interleaved rounds. Each publish is one observation acknowledged by the stream
 * (distinct eventIds, so every one is stored), `INFLIGHT` at a time as a busy gateway would.
 *
 * Run (a NATS server with JetStream at NATS_URL, default nats://127.0.0.1:4222):
 *   npx tsx --conditions=dev-source packages/nats/scripts/publish-cpu.ts
 * PUBLISHES (default 20,000), INFLIGHT (default 8) and ROUNDS (default 3) change the run.
 */
import { randomBytes } from "node:crypto";
import type { UsageObservation } from "@latch/core";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  deleteIngestStreams,
  ensureIngestStreams,
  ingestNames,
  messageId,
  natsIngestLog,
} from "../src/index.js";
// The tests' server address and observation (1,000 input + 200 output tokens of gpt-4o).
import { NATS_URL, observation } from "../test/support/fixtures.js";

const publishes = Number(process.env.PUBLISHES ?? 20_000);
const inflight = Number(process.env.INFLIGHT ?? 8);
const rounds = Number(process.env.ROUNDS ?? 3);

const stream = `BENCH_ACK_${process.pid}_${randomBytes(3).toString("hex")}`;
const names = ingestNames(stream);
const nc = await connect({ servers: NATS_URL });
const quiet = await connect({ servers: NATS_URL, noAsyncTraces: true });
await ensureIngestStreams(nc, { stream });

const base = observation("bench");
let serial = 0;
function batch(): UsageObservation[] {
  return Array.from({ length: publishes }, () => ({ ...base, eventId: `bench-${serial++}:0:openai` }));
}

type Publish = (obs: UsageObservation) => Promise<unknown>;
const encoder = new TextEncoder();
/** natsIngestLog's publish before this change, on connection `c`. */
function viaJsPublish(c: typeof nc): Publish {
  const js = jetstream(c, { timeout: 2_000 });
  return (obs) =>
    js.publish(names.subject, encoder.encode(JSON.stringify(obs)), {
      msgID: messageId(obs),
      expect: { streamName: stream },
      timeout: 2_000,
    });
}
const variants: Record<string, Publish> = {
  "js.publish": viaJsPublish(nc),
  "js.publish noAsyncTraces": viaJsPublish(quiet),
  natsIngestLog: natsIngestLog({ connection: nc, stream }).publish,
};

async function run(
  publish: Publish,
  observations: UsageObservation[],
): Promise<{ cpuUs: number; ms: number }> {
  let next = 0;
  const worker = async () => {
    while (next < observations.length) await publish(observations[next++] as UsageObservation);
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: inflight }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: (cpu.user + cpu.system) / observations.length, ms: performance.now() - t0 };
}

const results: Record<string, number[]> = {};
try {
  // Warm-up (JIT, connections): not measured.
  for (const publish of Object.values(variants)) await run(publish, batch().slice(0, 2_000));
  for (let round = 1; round <= rounds; round++) {
    const order = Object.keys(variants);
    if (round % 2 === 0) order.reverse();
    for (const name of order) {
      const observations = batch();
      global.gc?.();
      const { cpuUs, ms } = await run(variants[name] as Publish, observations);
      results[name] = [...(results[name] ?? []), cpuUs];
      console.log(
        `round ${round} ${name.padEnd(26)} ${cpuUs.toFixed(1)} µs CPU/publish  ${((publishes / ms) * 1000).toFixed(0)} publishes/s`,
      );
    }
  }
  console.log(`\n${publishes} publishes, ${inflight} in flight, ${rounds} rounds (median of the rounds):`);
  for (const [name, values] of Object.entries(results)) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(
      `${name.padEnd(26)} median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} µs  (${values.map((v) => v.toFixed(1)).join(", ")})`,
    );
  }
} finally {
  await deleteIngestStreams(nc, stream);
  await nc.close();
  await quiet.close();
}
