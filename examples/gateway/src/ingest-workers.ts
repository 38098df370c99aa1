/**
 * The gateway's ingest workers in a process of their own: the fleet deployment's other half
 * (what `latch-ingest` does), for a gateway started with `LATCH_INGEST_WORKERS=0`.
 *
 *   LATCH_DATABASE_URL=… LATCH_REDIS_URL=… LATCH_NATS_URL=… LATCH_SCHEMA=latch_gateway \
 *   LATCH_REDIS_PREFIX=latch_gateway LATCH_INGEST_WORKERS=2 \
 *   pnpm --filter @latch/example-gateway exec tsx src/ingest-workers.ts
 *
 * It opens the same stores as the gateway (`@latch/config` settings; the schema and key prefix
 * must be the gateway's namespace, and are never wiped here), runs `LATCH_INGEST_WORKERS`
 * (default 1) workers of the stream's consumer group with the example's price sheets, and on
 * SIGTERM/SIGINT finishes the batches in hand and prints what it stored as one JSON line
 * (`{"stored":…,"retried":…,"deadLettered":…}`). The benchmark runs it next to the gateway so
 * the gateway's own process does only the gateway's work, as in a fleet.
 */
import { openLatchBackends, readLatchSettings } from "@latch/config";
import { InMemoryPricingSource } from "@latch/core";
import { PRICE_SHEETS } from "@latch/example-quickstart/simulation";
import { ensureIngestStreams, type IngestWorker, natsConnectionOptions, runIngestWorker } from "@latch/nats";
import { connect } from "@nats-io/transport-node";

const env = process.env;
const { nats, ...stores } = readLatchSettings({
  // The gateway's stream unless one is named (as config.ts).
  ...(env.LATCH_NATS_URL ? { LATCH_NATS_STREAM: "LATCH_GATEWAY" } : {}),
  ...env,
});
if (nats === undefined) throw new Error("LATCH_NATS_URL: the ingest workers need the stream's server");
const count = env.LATCH_INGEST_WORKERS === undefined ? 1 : Number(env.LATCH_INGEST_WORKERS);
if (!Number.isSafeInteger(count) || count < 1 || count > 999)
  throw new Error("LATCH_INGEST_WORKERS: expected an integer from 1 to 999");

// The stores only: these workers consume the stream, they do not publish to it.
const backends = await openLatchBackends(stores);
// Reconnects however long the server is away (the client's default gives up after ~20 s).
const connection = await connect({
  ...(await natsConnectionOptions(nats.url, nats.creds ? { creds: nats.creds } : {})),
  maxReconnectAttempts: -1,
});
await ensureIngestStreams(connection, { stream: nats.stream });
const pricing = new InMemoryPricingSource(PRICE_SHEETS);
const workers: IngestWorker[] = [];
for (let i = 0; i < count; i++)
  workers.push(
    await runIngestWorker({
      nats: connection,
      stream: nats.stream,
      observations: backends.observations,
      rated: backends.rated,
      pricing,
      counter: backends.counter,
    }),
  );
console.log(`ingest-workers: ${count} consuming ${nats.stream}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const stats = await Promise.all(workers.map((w) => w.stop()));
  const sum = (key: "stored" | "retried" | "deadLettered") => stats.reduce((n, s) => n + s[key], 0);
  console.log(
    JSON.stringify({ stored: sum("stored"), retried: sum("retried"), deadLettered: sum("deadLettered") }),
  );
  await connection.drain().catch(() => connection.close()); // the server away: not left reconnecting
  await backends.close();
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
