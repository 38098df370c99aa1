/**
 * Where the gateway's Latch keeps its state, chosen by configuration alone (the gateway code
 * is the same for all three):
 *
 * | shape | environment |
 * |---|---|
 * | embedded default | nothing: in-memory stores, export to a local folder |
 * | Postgres only | `LATCH_DATABASE_URL` (system of record, quota and counters in Postgres) |
 * | Postgres + Redis + S3 | `LATCH_DATABASE_URL`, `LATCH_REDIS_URL` (hot quota), `LATCH_S3_BUCKET` (+ `LATCH_S3_ENDPOINT`, `LATCH_S3_PREFIX`, AWS credentials from the default chain) |
 *
 * Without `LATCH_S3_BUCKET` the export goes to `LATCH_EXPORT_DIR` (default `./latch-out/gateway`).
 */
import { createLatch, FileExporter, InMemoryPricingSource, type Latch, type LatchConfig } from "@latch/core";
import type { RatedRecordExporter } from "@latch/core/adapter";
import { type Backends, openBackends } from "@latch/example-quickstart/backends";
import { PRICE_SHEETS } from "@latch/example-quickstart/simulation";
import { S3Exporter } from "@latch/s3";

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
}

export interface GatewayBackends extends Backends {
  exporter: RatedRecordExporter;
}

/** Reads {@link GatewayConfig} from the environment (the names in the table above). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return {
    ...(env.LATCH_DATABASE_URL ? { databaseUrl: env.LATCH_DATABASE_URL } : {}),
    ...(env.LATCH_REDIS_URL ? { redisUrl: env.LATCH_REDIS_URL } : {}),
    ...(env.LATCH_S3_BUCKET
      ? {
          s3: {
            bucket: env.LATCH_S3_BUCKET,
            ...(env.LATCH_S3_ENDPOINT ? { endpoint: env.LATCH_S3_ENDPOINT, forcePathStyle: true } : {}),
            ...(env.LATCH_S3_PREFIX ? { prefix: env.LATCH_S3_PREFIX } : {}),
          },
        }
      : {}),
    exportDir: env.LATCH_EXPORT_DIR ?? "latch-out/gateway",
  };
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
  return {
    ...backends,
    exporter,
    description: `${backends.description}; export to ${
      config.s3
        ? `s3://${config.s3.bucket}/${config.s3.prefix ?? ""}`
        : (config.exportDir ?? "latch-out/gateway")
    }`,
  };
}

/**
 * The gateway's Latch over its backends: the example price sheets, the backends' stores, quota,
 * counter and exporter, and a local spool for observations the store could not take.
 */
export function createGatewayLatch(
  backends: GatewayBackends,
  options: { spoolPath: string } & Pick<LatchConfig, "onWarning">,
): Latch {
  return createLatch({
    observations: backends.observations,
    rated: backends.rated,
    pricing: new InMemoryPricingSource(PRICE_SHEETS),
    quota: backends.quota,
    counter: backends.counter,
    exporter: backends.exporter,
    ...options,
  });
}
