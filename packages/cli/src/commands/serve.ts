import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { ApiKeys, LatchValidationError } from "@latch/core";
import { API_KEY_SCOPES } from "@latch/core/adapter";
import { createBillingApp } from "@latch/http";
import {
  PostgresApiKeyStore,
  PostgresCreditLedger,
  PostgresQuota,
  PostgresRatedRecordStore,
} from "@latch/postgres";
import pg from "pg";
import type { CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";
import { postgresOf } from "../stores.js";
import type { KeysCreateOptions, ServeOptions } from "./serve-command.js";

interface BillingBackend {
  pool: pg.Pool;
  schema: string;
  keys: ApiKeys;
  records: PostgresRatedRecordStore;
  credits: PostgresCreditLedger | undefined;
}

/**
 * Opens the Postgres stores of the billing API and checks, before anything listens, that the
 * schema is migrated (else `schema_not_migrated`, which the CLI tells as "run latch migrate")
 * and that the API-key secret is there.
 */
async function openBilling(
  options: { databaseUrl?: string | undefined; schema?: string | undefined; credits?: boolean },
  ctx: CliContext,
): Promise<BillingBackend> {
  const secret = ctx.env.LATCH_API_KEY_SECRET;
  if (secret === undefined || secret === "") {
    throw new UsageError(
      "LATCH_API_KEY_SECRET: required: the HMAC secret of API keys (≥ 32 bytes), kept out of the database",
    );
  }
  const { url, schema } = postgresOf(options, ctx.env);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client's error (a server restart) must not end the process.
  pool.on("error", () => undefined);
  try {
    const store = new PostgresApiKeyStore(pool, { schema });
    const quota = new PostgresQuota(pool, { schema });
    const records = new PostgresRatedRecordStore(pool, { schema });
    const credits = options.credits ? new PostgresCreditLedger(pool, { schema }) : undefined;
    let keys: ApiKeys;
    try {
      keys = new ApiKeys({ store, secret, quota });
    } catch (error) {
      if (error instanceof LatchValidationError)
        throw new UsageError(`LATCH_API_KEY_SECRET: ${error.issues[0]?.message ?? "invalid"}`);
      throw error;
    }
    for (const part of [records, store, quota, credits]) await part?.ready(ctx.signal);
    return { pool, schema, keys, records, credits };
  } catch (error) {
    await pool.end();
    throw error;
  }
}

function portOf(value: string | undefined): number {
  const text = value ?? "8787";
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535) throw new UsageError(`--port: expected 0–65535, got "${text}"`);
  return port;
}

/**
 * `latch serve`: the billing HTTP API of `@latch/http` on the Postgres stores (API keys, their
 * quotas, rated records, and with `--credits` the credit ledger) until SIGINT/SIGTERM, then a
 * graceful close (exit 0).
 */
export async function runServe(options: ServeOptions, ctx: CliContext): Promise<void> {
  const port = portOf(options.port ?? ctx.env.LATCH_PORT);
  const host = options.host ?? ctx.env.LATCH_HOST ?? "127.0.0.1";
  const billing = await openBilling(options, ctx);
  try {
    const app = createBillingApp({ keys: billing.keys, records: billing.records, credits: billing.credits });
    const server = serve({ fetch: app.fetch, port, hostname: host });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(new UsageError(`--port: cannot listen on ${host}:${port} (${error.code ?? error.message})`)),
      );
      server.once("listening", () => {
        const address = server.address() as AddressInfo;
        ctx.stderr.write(
          `latch serve: billing API on http://${host}:${address.port} (PostgreSQL schema ${billing.schema}${
            billing.credits ? ", credits" : ""
          }); GET /openapi.json lists the routes; Ctrl-C stops\n`,
        );
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    });
    // Stop taking connections, let requests in flight finish, then close the pool.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    ctx.stderr.write("latch serve: stopped\n");
  } finally {
    await billing.pool.end();
  }
}

/** `latch keys create`: a key for `--tenant`, printed once (stdout); the store keeps its digest. */
export async function runKeysCreate(options: KeysCreateOptions, ctx: CliContext): Promise<void> {
  if (options.tenant === undefined) throw new UsageError("--tenant: required (the key's owner)");
  const billing = await openBilling(options, ctx);
  try {
    let created: Awaited<ReturnType<ApiKeys["create"]>>;
    try {
      created = await billing.keys.create({
        owner: { tenantId: options.tenant },
        name: options.name,
        scopes: options.scopes ?? Object.values(API_KEY_SCOPES),
      });
    } catch (error) {
      if (error instanceof LatchValidationError) {
        const issue = error.issues[0];
        const flag = issue?.path.startsWith("owner")
          ? "--tenant"
          : issue?.path.startsWith("scopes")
            ? "--scopes"
            : "--name";
        throw new UsageError(`${flag}: ${issue?.message ?? "invalid"}`);
      }
      throw error;
    }
    if (options.json) {
      ctx.stdout.write(`${JSON.stringify({ key: created.key, plaintext: created.plaintext })}\n`);
      return;
    }
    ctx.stderr.write(
      `key ${created.key.id} for tenant ${options.tenant} (${created.key.scopes.join(", ")}); shown once:\n`,
    );
    ctx.stdout.write(`${created.plaintext}\n`);
  } finally {
    await billing.pool.end();
  }
}
