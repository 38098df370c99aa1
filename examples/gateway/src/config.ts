/**
 * Where the gateway's Latch keeps its state, chosen by configuration alone (the gateway code
 * is the same for all four):
 *
 * | shape | environment |
 * |---|---|
 * | embedded default | nothing: in-memory stores, export to a local folder |
 * | Postgres only | `LATCH_DATABASE_URL` (system of record, quota and counters in Postgres) |
 * | Postgres + Redis + S3 | `LATCH_DATABASE_URL`, `LATCH_REDIS_URL` (hot quota), `LATCH_S3_BUCKET` (+ `LATCH_S3_ENDPOINT`, `LATCH_S3_PREFIX`, AWS credentials from the default chain) |
 * | any of the above + NATS JetStream | `LATCH_NATS_URL` (+ `LATCH_NATS_STREAM`, default `LATCH_GATEWAY`; `LATCH_INGEST_WORKERS`, default 1): `record()` publishes to the stream and ingest workers store and rate |
 *
 * Without `LATCH_S3_BUCKET` the export goes to `LATCH_EXPORT_DIR` (default `./latch-out/gateway`).
 * `LATCH_RECONCILE_EVERY_MS` (default 60,000) is the reconcile loop's interval in `--serve` mode.
 */

import { readLatchSettings } from "@latch/config";
import {
  createLatch,
  FileExporter,
  type IngestLog,
  InMemoryPricingSource,
  type Latch,
  type LatchConfig,
} from "@latch/core";
import type { RatedRecordExporter } from "@latch/core/adapter";
import { type Backends, openBackends } from "@latch/example-quickstart/backends";
import { PRICE_SHEETS } from "@latch/example-quickstart/simulation";
import {
  deleteIngestStreams,
  ensureIngestStreams,
  type IngestWorker,
  ingestLag,
  natsConnectionOptions,
  natsIngestLog,
  runIngestWorker,
} from "@latch/nats";
import { S3Exporter } from "@latch/s3";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { MAX_RECONCILE_EVERY_MS } from "./reconcile-loop.js";

export interface GatewayConfig {
  databaseUrl?: string;
  redisUrl?: string;
  s3?: {
    bucket: string;
    endpoint?: string;
    prefix?: string;
    forcePathStyle?: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
  /** Folder of the file export when there is no S3. */
  exportDir?: string;
  /** Postgres schema / Redis key prefix (wiped at start). Default `latch_gateway`. */
  namespace?: string;
  dropOnClose?: boolean;
  /** Connections in the PostgreSQL pool. Default 4. */
  poolSize?: number;
  /**
   * The fleet deployment: `record()` publishes to this JetStream stream and ingest workers
   * store and rate. `workers` run in this process (default 1, so the example is complete on
   * its own); with 0, run `latch-ingest` processes against the same stores instead.
   */
  nats?: { url: string; stream?: string; workers?: number; creds?: string };
  /** The reconcile loop's interval in `--serve` mode (`LATCH_RECONCILE_EVERY_MS`). Default 60,000. */
  reconcileEveryMs?: number;
}

export interface GatewayBackends extends Backends {
  exporter: RatedRecordExporter;
  /** Set on the JetStream deployment: the log `record()` publishes to. */
  ingest?: IngestLog;
  /**
   * Resolves once the stores hold every observation published so far (the consumer's lag is 0);
   * immediately without an ingest log. Reports and exports read the stores: wait before them.
   */
  ingestDrained(timeoutMs?: number): Promise<void>;
  /** The consumer's lag (messages not stored yet) and what this process's workers stored; zeros without an ingest log. */
  ingestStatus(): Promise<{ lag: number; stored: number }>;
}

/**
 * Reads {@link GatewayConfig} from the environment (the names in the table above) through
 * `@latch/config`, so they are validated like any Latch application's: a bad value fails with
 * the variable's name, never its value. `LATCH_INGEST_WORKERS` and `LATCH_RECONCILE_EVERY_MS`
 * are the gateway's own; the latter echoes a bad value only when it is at most 16 printable
 * ASCII characters (a typo such as `60s`), and otherwise gives its length only.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const settings = readLatchSettings({
    // The gateway's stream unless one is named.
    ...(env.LATCH_NATS_URL ? { LATCH_NATS_STREAM: "LATCH_GATEWAY" } : {}),
    ...env,
  });
  if (settings.store === "pglite" || settings.store === "redis")
    throw new Error("LATCH_STORE: the gateway example runs on memory or postgres");
  const workers = env.LATCH_INGEST_WORKERS;
  if (workers !== undefined && !/^[0-9]{1,3}$/.test(workers))
    throw new Error("LATCH_INGEST_WORKERS: expected an integer from 0 to 999");
  const reconcileEveryMs = parseReconcileEveryMs(env.LATCH_RECONCILE_EVERY_MS);
  return {
    ...(settings.databaseUrl ? { databaseUrl: settings.databaseUrl } : {}),
    ...(settings.redis ? { redisUrl: settings.redis.url } : {}),
    ...(settings.s3
      ? {
          s3: {
            bucket: settings.s3.bucket,
            ...(settings.s3.endpoint ? { endpoint: settings.s3.endpoint, forcePathStyle: true } : {}),
            ...(settings.s3.prefix ? { prefix: settings.s3.prefix } : {}),
          },
        }
      : {}),
    ...(settings.nats
      ? {
          nats: {
            url: settings.nats.url,
            stream: settings.nats.stream,
            ...(settings.nats.creds ? { creds: settings.nats.creds } : {}),
            ...(workers !== undefined ? { workers: Number(workers) } : {}),
          },
        }
      : {}),
    exportDir: settings.exportDir ?? "latch-out/gateway",
    ...(reconcileEveryMs !== undefined ? { reconcileEveryMs } : {}),
  };
}

/**
 * `LATCH_RECONCILE_EVERY_MS`: digits only (no sign, decimal point, exponent, `_` or unit), from 1
 * to 2^31 - 1 (the longest Node timer). Unset = the loop's default; set but empty is refused.
 */
function parseReconcileEveryMs(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 1 && value <= MAX_RECONCILE_EVERY_MS)) {
    // Echoed only when short and printable ASCII: a longer value may be a secret set in the
    // wrong variable (a URL with its password, a key), and a control character or a Unicode
    // line separator (which JSON.stringify leaves as is) would break the log line.
    const shown = /^[\x20-\x7e]{0,16}$/.test(raw)
      ? JSON.stringify(raw)
      : `a value of ${raw.length} characters (not shown: longer than 16 or not printable ASCII)`;
    throw new Error(
      `LATCH_RECONCILE_EVERY_MS: expected a whole number of milliseconds from 1 to ${MAX_RECONCILE_EVERY_MS}, got ${shown}`,
    );
  }
  return value;
}

export async function openGatewayBackends(config: GatewayConfig): Promise<GatewayBackends> {
  const backends = await openBackends({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    namespace: config.namespace ?? "latch_gateway",
    dropOnClose: config.dropOnClose ?? false,
    ...(config.poolSize !== undefined ? { poolSize: config.poolSize } : {}),
  });
  const exporter: RatedRecordExporter = config.s3
    ? new S3Exporter({ ...config.s3, formats: ["jsonl.gz", "parquet"] })
    : new FileExporter({ directory: config.exportDir ?? "latch-out/gateway", formats: ["jsonl.gz", "csv"] });
  const exportTo = `export to ${
    config.s3
      ? `s3://${config.s3.bucket}/${config.s3.prefix ?? ""}`
      : (config.exportDir ?? "latch-out/gateway")
  }`;
  if (config.nats === undefined)
    return {
      ...backends,
      exporter,
      description: `${backends.description}; ${exportTo}`,
      ingestDrained: async () => {},
      ingestStatus: async () => ({ lag: 0, stored: 0 }),
    };
  const fleet = await openIngest(config.nats, backends, config.dropOnClose ?? false).catch(async (error) => {
    await backends.close();
    throw error;
  });
  return {
    ...backends,
    exporter,
    ingest: fleet.log,
    ingestDrained: fleet.drained,
    ingestStatus: fleet.status,
    description: `${backends.description}; record() publishes to JetStream stream ${fleet.stream} (${fleet.workers} ingest worker(s) in process); ${exportTo}`,
    async close() {
      await fleet.close();
      await backends.close();
    },
  };
}

/** The JetStream side of the fleet deployment: the stream, in-process workers, their lag. */
async function openIngest(
  nats: NonNullable<GatewayConfig["nats"]>,
  backends: Backends,
  dropOnClose: boolean,
) {
  const stream = nats.stream ?? "LATCH_GATEWAY";
  const count = nats.workers ?? 1;
  // noAsyncTraces: the client otherwise builds an Error (a stack capture) for every publish in
  // case its ack fails: CPU on every request's path, for a stack only a failure would show.
  // maxReconnectAttempts -1: the client's default gives up after ~20 s away, and then every
  // record() spools and the workers fetch nothing until the process restarts.
  const connection: NatsConnection = await connect({
    ...(await natsConnectionOptions(nats.url, nats.creds ? { creds: nats.creds } : {})),
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
  });
  const pricing = new InMemoryPricingSource(PRICE_SHEETS);
  const workers: IngestWorker[] = [];
  try {
    await ensureIngestStreams(connection, { stream });
    for (let i = 0; i < count; i++)
      workers.push(
        await runIngestWorker({
          nats: connection,
          stream,
          observations: backends.observations,
          rated: backends.rated,
          pricing,
          counter: backends.counter,
        }),
      );
  } catch (error) {
    await connection.close();
    throw error;
  }
  return {
    stream,
    workers: count,
    log: natsIngestLog({ connection, stream }),
    async drained(timeoutMs = 120_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const lag = await ingestLag(connection, stream);
        if (lag.pending === 0 && lag.ackPending === 0) return;
        if (Date.now() > until)
          throw new Error(`ingest lag still ${lag.pending + lag.ackPending} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async status() {
      const lag = await ingestLag(connection, stream);
      return {
        lag: lag.pending + lag.ackPending,
        stored: workers.reduce((sum, w) => sum + w.stats().stored, 0),
      };
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      if (dropOnClose) await deleteIngestStreams(connection, stream);
      await connection.drain().catch(() => connection.close()); // the server away: not left reconnecting
    },
  };
}

/**
 * The gateway's Latch over its backends: the example price sheets, the backends' stores, quota,
 * counter and exporter, the ingest log on the JetStream deployment, and a local spool for
 * observations the store (or the log) could not take. `quotaUnits` (default: total tokens) is
 * what a settle and the reconcile loop charge a hold; one that needs the rated record (cost)
 * answers `undefined` without it, and on JetStream the reconcile loop then commits the hold.
 */
export function createGatewayLatch(
  backends: GatewayBackends,
  options: { spoolPath: string } & Pick<LatchConfig, "onWarning" | "quotaUnits">,
): Latch {
  return createLatch({
    observations: backends.observations,
    rated: backends.rated,
    pricing: new InMemoryPricingSource(PRICE_SHEETS),
    quota: backends.quota,
    counter: backends.counter,
    exporter: backends.exporter,
    ...(backends.ingest ? { ingest: backends.ingest } : {}),
    ...options,
  });
}
