import { describeSettings, hostOf, type LatchSettings, readLatchSettings } from "@latch/config";
import { LatchValidationError } from "@latch/core";
import type { CliContext } from "../context.js";
import { CommandError } from "../exit-codes.js";
import type { DoctorOptions } from "./doctor-command.js";
import { describeHolder, remedy } from "./export-status.js";

/** One finding: `fail` makes `latch doctor` exit 1; `warn` does not. */
export interface DoctorCheck {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  /** What to do about it (set on `warn` and `fail`). */
  fix?: string;
}

/** How long a backend gets to answer before the check fails. */
const TIMEOUT_MS = 5_000;

/** A driver's error in one line, without anything that could be a credential. */
function reason(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message.replace(/\/\/[^@\s]*@/g, "//") : "unknown error";
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * `latch doctor`: reads the configuration as `loadLatchConfig()` does and checks each backend
 * it names: PostgreSQL (connection, migrations against `REQUIRED_SCHEMA_VERSION`, the export
 * change log), Redis (connection, `maxmemory-policy`), S3 (the bucket answers), NATS (the
 * ingest stream and its backlog). Prints one line per check with the fix; exit 1 on a failure.
 */
export async function runDoctor(options: DoctorOptions, ctx: CliContext): Promise<void> {
  const checks: DoctorCheck[] = [];
  let settings: LatchSettings | undefined;
  try {
    settings = readLatchSettings(ctx.env);
    checks.push({ check: "configuration", status: "ok", detail: describeSettings(settings) });
  } catch (error) {
    if (!LatchValidationError.isInstance(error)) throw error;
    for (const issue of error.issues)
      checks.push({
        check: "configuration",
        status: "fail",
        detail: `${issue.path}: ${issue.message}`,
        fix: `correct ${issue.path.split(" ")[0]} (the variables are listed in the @latch/config README)`,
      });
  }
  if (settings !== undefined) {
    if (settings.store === "postgres") checks.push(...(await checkPostgres(settings, options.consumer)));
    else if (settings.store === "pglite")
      checks.push({
        check: "pglite",
        status: "ok",
        detail: `${settings.pgliteDir === undefined ? "in memory" : `data directory ${settings.pgliteDir}`}; migrated by loadLatchConfig() when the application opens it (not opened here: two processes on one directory lose writes)`,
      });
    else if (settings.store === "memory") {
      checks.push({
        check: "store",
        status: "ok",
        detail: "in-memory stores: nothing to connect to (data lasts as long as the process)",
      });
      checks.push(...unusedGenericUrls(settings, ctx.env));
    }
    if (settings.redis) checks.push(...(await checkRedis(settings.redis)));
    if (settings.s3) checks.push(await checkS3(settings.s3));
    if (settings.nats) checks.push(await checkNats(settings.nats));
  }
  const failures = checks.filter((c) => c.status === "fail").length;
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify({ ok: failures === 0, checks })}\n`);
  } else {
    let out = "";
    for (const c of checks) {
      out += `${c.status.padEnd(4)}  ${c.check}: ${c.detail}\n`;
      if (c.fix !== undefined) out += `      fix: ${c.fix}\n`;
    }
    ctx.stdout.write(out);
  }
  if (failures > 0) throw new CommandError(`doctor: ${failures} problem${failures === 1 ? "" : "s"} found`);
}

/**
 * `DATABASE_URL` / `REDIS_URL` in the environment while Latch runs on memory: the generic names
 * are read only when `LATCH_STORE` names that backend (they often belong to the application), so
 * a user who expected them to be used is told, without failing.
 */
function unusedGenericUrls(settings: LatchSettings, env: Record<string, string | undefined>): DoctorCheck[] {
  const found: DoctorCheck[] = [];
  if (env.DATABASE_URL)
    found.push({
      check: "store",
      status: "warn",
      detail:
        "DATABASE_URL is set but not used: without LATCH_STORE=postgres (or LATCH_DATABASE_URL) Latch keeps its data in memory",
      fix: "set LATCH_STORE=postgres to store in that database, or LATCH_DATABASE_URL to name another",
    });
  if (env.REDIS_URL && settings.redis === undefined)
    found.push({
      check: "quota",
      status: "warn",
      detail:
        "REDIS_URL is set but not used: without LATCH_REDIS_URL (or LATCH_STORE=redis) quota holds live in memory",
      fix: "set LATCH_REDIS_URL to keep quota holds in Redis",
    });
  return found;
}

async function checkPostgres(settings: LatchSettings, consumer: string): Promise<DoctorCheck[]> {
  const where = hostOf(settings.databaseUrl);
  const [{ default: pg }, postgres] = await Promise.all([import("pg"), import("@latch/postgres")]);
  const pool = new pg.Pool({
    connectionString: settings.databaseUrl,
    max: 1,
    connectionTimeoutMillis: TIMEOUT_MS,
    application_name: "latch doctor",
  });
  pool.on("error", () => undefined);
  const checks: DoctorCheck[] = [];
  try {
    try {
      const { rows } = await pool.query("SHOW server_version");
      checks.push({
        check: "postgres",
        status: "ok",
        detail: `connected to ${where} (PostgreSQL ${(rows[0] as { server_version: string }).server_version})`,
      });
    } catch (error) {
      checks.push({
        check: "postgres",
        status: "fail",
        detail: `cannot connect to ${where} (${reason(error)})`,
        fix: "check LATCH_DATABASE_URL (host, port, user, password, database) and that the server accepts connections",
      });
      return checks;
    }
    const schema = settings.schema;
    const required = postgres.REQUIRED_SCHEMA_VERSION;
    const found = await postgres.schemaVersion(pool, schema);
    let migrated = false;
    try {
      await postgres.assertMigrated(pool, schema);
      migrated = true;
      checks.push({
        check: "migrations",
        status: "ok",
        detail: `schema ${schema} at migration ${found} (this version needs ${required})`,
      });
    } catch (error) {
      if (postgres.SchemaNotMigratedError.isInstance(error)) {
        checks.push({
          check: "migrations",
          status: "fail",
          detail:
            found === 0
              ? `schema ${schema} is not migrated (this version needs migration ${required})`
              : `schema ${schema} is at migration ${found}, this version needs ${required}`,
          fix: `run \`latch migrate\` with the same LATCH_DATABASE_URL and LATCH_SCHEMA=${schema} (or migrate() from @latch/postgres in your deploy step)`,
        });
      } else if (postgres.SchemaIncompatibleError.isInstance(error)) {
        checks.push({
          check: "migrations",
          status: "fail",
          detail: `schema ${schema} is at migration ${found}, newer than this version (${required}) can use`,
          fix: "upgrade @latch/postgres and @latch/cli to the version that migrated the schema",
        });
      } else throw error;
    }
    if (migrated)
      checks.push(await checkExport(new postgres.PostgresRatedRecordStore(pool, { schema }), consumer));
  } finally {
    await pool.end();
  }
  return checks;
}

/** The export change log, as `latch export status` reports it. */
async function checkExport(
  store: import("@latch/core/adapter").RatedRecordStore,
  consumer: string,
): Promise<DoctorCheck> {
  const status = await store.changeLogStatus?.({ consumer });
  if (status === undefined) return { check: "export", status: "ok", detail: "the store keeps no change log" };
  const counts = `consumer ${consumer}: ${status.capped ? "at least " : ""}${status.ready} version(s) ready to export, ${status.waiting} held back`;
  // A transaction open right now holds nothing back unless versions wait behind it.
  if (status.heldBack === undefined || status.waiting === 0)
    return { check: "export", status: "ok", detail: counts };
  return {
    check: "export",
    status: "warn",
    detail: `${counts}, by ${describeHolder(status.heldBack)}`,
    fix: `${remedy(status.heldBack)}; details with \`latch export status --consumer ${consumer}\``,
  };
}

async function checkRedis(redisSettings: NonNullable<LatchSettings["redis"]>): Promise<DoctorCheck[]> {
  const where = hostOf(redisSettings.url);
  const [{ Redis }, redisAdapter] = await Promise.all([import("ioredis"), import("@latch/redis")]);
  const redis = new Redis(redisSettings.url, {
    ...redisAdapter.failFastRedisOptions(TIMEOUT_MS),
    lazyConnect: true,
    retryStrategy: () => null,
  });
  redis.on("error", () => undefined);
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      return [
        {
          check: "redis",
          status: "fail",
          detail: `cannot connect to ${where} (${reason(error)})`,
          fix: "check LATCH_REDIS_URL (host, port, password, TLS with rediss://) and that the server is up",
        },
      ];
    }
    const checks: DoctorCheck[] = [{ check: "redis", status: "ok", detail: `connected to ${where}` }];
    try {
      await redisAdapter.checkEvictionPolicy(redis, Date.now() + TIMEOUT_MS);
      checks.push({
        check: "redis settings",
        status: "ok",
        detail: `maxmemory-policy ${redisAdapter.SAFE_EVICTION_POLICY}`,
      });
    } catch (error) {
      if (!redisAdapter.UnsafeServerSettingError.isInstance(error)) throw error;
      checks.push({
        check: "redis settings",
        status: "fail",
        detail: error.message,
        fix: "set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction; on managed Redis, the parameter group)",
      });
    }
    return checks;
  } finally {
    redis.disconnect();
  }
}

async function checkS3(s3: NonNullable<LatchSettings["s3"]>): Promise<DoctorCheck> {
  const { HeadBucketCommand, S3Client } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: s3.region ?? process.env.AWS_REGION ?? "us-east-1",
    ...(s3.endpoint !== undefined ? { endpoint: s3.endpoint, forcePathStyle: true } : {}),
    maxAttempts: 1,
  });
  try {
    await client.send(new HeadBucketCommand({ Bucket: s3.bucket }), {
      abortSignal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return { check: "s3", status: "ok", detail: `bucket ${s3.bucket} answers` };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return {
      check: "s3",
      status: "fail",
      detail: `bucket ${s3.bucket}: ${status === 404 ? "does not exist" : status === 403 ? "access denied" : reason(error)}`,
      fix:
        status === 404
          ? "create the bucket, or correct LATCH_S3_BUCKET"
          : "check the AWS credentials (default chain), LATCH_S3_REGION and LATCH_S3_ENDPOINT",
    };
  } finally {
    client.destroy();
  }
}

async function checkNats(nats: NonNullable<LatchSettings["nats"]>): Promise<DoctorCheck> {
  const [{ connect }, { ingestLag, natsConnectionOptions }] = await Promise.all([
    import("@nats-io/transport-node"),
    import("@latch/nats"),
  ]);
  let connection: Awaited<ReturnType<typeof connect>>;
  try {
    const options = await natsConnectionOptions(nats.url, nats.creds ? { creds: nats.creds } : {});
    connection = await connect({ ...options, timeout: TIMEOUT_MS, reconnect: false });
  } catch (error) {
    return {
      check: "nats",
      status: "fail",
      detail: `cannot connect to ${hostOf(nats.url)} (${reason(error)})`,
      fix: "check LATCH_NATS_URL (credentials in it, or LATCH_NATS_CREDS) and that nats-server runs with JetStream (-js)",
    };
  }
  try {
    const lag = await ingestLag(connection, nats.stream);
    return {
      check: "nats",
      status: "ok",
      detail: `stream ${nats.stream}: ${lag.pending} message(s) not yet stored, ${lag.ackPending} being stored`,
    };
  } catch (error) {
    return {
      check: "nats",
      status: "warn",
      detail: `stream ${nats.stream} or its ingest consumer is missing (${reason(error)})`,
      fix: "start the application (loadLatchConfig creates the stream) and at least one ingest worker (latch-ingest)",
    };
  } finally {
    await connection.close();
  }
}
