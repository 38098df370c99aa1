import { readFileSync } from "node:fs";
import { LatchValidationError } from "@latch/core";
import { z } from "zod";

/** The stores an application can keep observations and rated records in. */
export const STORES = ["memory", "pglite", "postgres", "redis"] as const;
export type StoreKind = (typeof STORES)[number];

/**
 * Validated configuration, read by {@link readLatchSettings}: plain data, nothing opened yet.
 * Every field comes from one `LATCH_*` variable (see the package README's table).
 */
export interface LatchSettings {
  /**
   * `LATCH_STORE`: where observations and rated records live. Default `postgres` when a database
   * URL is set, else `memory`. `redis` keeps them in Redis too (`LATCH_REDIS_URL`).
   */
  store: StoreKind;
  /** `LATCH_DATABASE_URL` (fallback `DATABASE_URL`); required by `postgres`. */
  databaseUrl?: string;
  /** `LATCH_PGLITE_DIR`: PGlite's data directory; without it PGlite runs in memory. */
  pgliteDir?: string;
  /** `LATCH_SCHEMA`, default `latch`. */
  schema: string;
  /** `LATCH_POOL_SIZE`: connections in the PostgreSQL pool, default 4. */
  poolSize: number;
  /** `LATCH_MIGRATE`: apply pending migrations when opening Postgres (PGlite always migrates). Default false. */
  migrate: boolean;
  /** `LATCH_REDIS_URL` (fallback `REDIS_URL`): quota and usage counters in Redis. */
  redis?: { url: string; keyPrefix: string };
  /** `LATCH_S3_BUCKET` (+ `LATCH_S3_ENDPOINT`, `LATCH_S3_PREFIX`, `LATCH_S3_REGION`): export to S3. */
  s3?: { bucket: string; endpoint?: string; prefix?: string; region?: string };
  /** `LATCH_EXPORT_DIR`: export to a local folder (when there is no S3 bucket). */
  exportDir?: string;
  /**
   * `LATCH_NATS_URL` (+ `LATCH_NATS_STREAM`, default `LATCH_INGEST`; `LATCH_NATS_CREDS`, a `.creds`
   * file): `record()` publishes to JetStream. The URL may carry credentials
   * (`nats://user:password@host:4222`, `nats://token@host:4222`; see `natsConnectionOptions`).
   */
  nats?: { url: string; stream: string; creds?: string };
  /** `LATCH_PRICES_FILE`: a price file (as `latch prices` writes it). */
  pricesFile?: string;
  /** `LATCH_SPOOL_DIR`: the facade's spool directory. */
  spoolDir?: string;
}

/** Where a value came from: the variable's name, with the config file when it was read from one. */
type Source = { name: string; file?: string };

const label = (s: Source) => (s.file === undefined ? s.name : `${s.name} (in ${s.file})`);

const url = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    // Never the value: database and Redis URLs carry passwords.
    { message: `expected a ${protocols.map((p) => `${p}//`).join(" or ")} URL` },
  );

const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "expected [a-z_][a-z0-9_]{0,62}" });
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max, { message: `expected at most ${max} characters` });
const flag = z.enum(["true", "false", "1", "0"], { message: "expected true or false" });
const count = (max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, { message: `expected an integer from 1 to ${max}` })
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, { message: `expected an integer from 1 to ${max}` });

/**
 * Every variable, its schema and the older names accepted in its place (first found wins;
 * `fallbackOnlyFor`: only when `LATCH_STORE` is that store).
 * The schemas are the single source of the documented table.
 */
const VARIABLES = {
  LATCH_STORE: { schema: z.enum(STORES, { message: `expected one of ${STORES.join(", ")}` }) },
  LATCH_DATABASE_URL: {
    schema: url(["postgres:", "postgresql:"]),
    fallbacks: ["DATABASE_URL"],
    fallbackOnlyFor: "postgres",
  },
  LATCH_PGLITE_DIR: { schema: text(4096) },
  LATCH_SCHEMA: { schema: identifier },
  LATCH_POOL_SIZE: { schema: count(1000) },
  LATCH_MIGRATE: { schema: flag },
  LATCH_REDIS_URL: { schema: url(["redis:", "rediss:"]), fallbacks: ["REDIS_URL"], fallbackOnlyFor: "redis" },
  LATCH_REDIS_PREFIX: { schema: text(64), fallbacks: ["LATCH_KEY_PREFIX"] },
  LATCH_S3_BUCKET: {
    schema: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
      message: "expected an S3 bucket name (3–63 characters: a-z, 0-9, '.', '-')",
    }),
  },
  LATCH_S3_ENDPOINT: { schema: url(["http:", "https:"]) },
  LATCH_S3_PREFIX: { schema: text(512) },
  LATCH_S3_REGION: { schema: z.string().regex(/^[a-z0-9-]{1,32}$/, { message: "expected a region name" }) },
  LATCH_EXPORT_DIR: { schema: text(4096) },
  LATCH_NATS_URL: { schema: url(["nats:", "tls:", "ws:", "wss:"]) },
  LATCH_NATS_STREAM: {
    schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: "expected 1–64 of A-Z, a-z, 0-9, _, -" }),
  },
  LATCH_NATS_CREDS: { schema: text(4096) },
  LATCH_PRICES_FILE: { schema: text(4096) },
  LATCH_SPOOL_DIR: { schema: text(4096) },
} as const satisfies Record<
  string,
  { schema: z.ZodType; fallbacks?: readonly string[]; fallbackOnlyFor?: StoreKind }
>;

type Variable = keyof typeof VARIABLES;
type Values = { [K in Variable]?: z.output<(typeof VARIABLES)[K]["schema"]> };

/** The documented variables, in the order of the README's table. */
export const LATCH_VARIABLES: readonly Variable[] = Object.keys(VARIABLES) as Variable[];

/** `LATCH_CONFIG` may name a JSON file whose keys are the same variable names. */
function readConfigFile(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw LatchValidationError.at(
      "Latch configuration",
      "LATCH_CONFIG",
      typeof code === "string" ? `cannot read the file (${code})` : "the file is not JSON",
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw LatchValidationError.at("Latch configuration", "LATCH_CONFIG", "expected a JSON object");
  }
  const known = new Set<string>(
    Object.entries(VARIABLES).flatMap(([name, v]) => [name, ...("fallbacks" in v ? v.fallbacks : [])]),
  );
  const out: Record<string, string> = {};
  const issues: Array<{ path: string; message: string }> = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key)) {
      issues.push({ path: `${key} (in ${path})`, message: "not a Latch setting" });
    } else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      out[key] = String(value);
    } else {
      issues.push({ path: `${key} (in ${path})`, message: "expected a string, number or boolean" });
    }
  }
  if (issues.length > 0) throw new LatchValidationError({ subject: "Latch configuration", issues });
  return out;
}

/**
 * Reads and validates Latch's configuration from `env` (default `process.env`) and, when
 * `LATCH_CONFIG` names one, a JSON file with the same keys (the environment wins). Opens
 * nothing. Every problem is reported at once, as a `LatchValidationError` whose issues name the
 * variable; values are never echoed (URLs carry passwords).
 *
 * @example
 * const settings = readLatchSettings({ LATCH_DATABASE_URL: "postgres://localhost/app" });
 * settings.store; // "postgres"
 */
export function readLatchSettings(env: Record<string, string | undefined> = process.env): LatchSettings {
  const configPath = env.LATCH_CONFIG === "" ? undefined : env.LATCH_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const values: Values = {};
  const sources: Partial<Record<Variable, Source>> = {};
  const issues: Array<{ path: string; message: string }> = [];
  for (const name of LATCH_VARIABLES) {
    const variable = VARIABLES[name];
    // Generic names (DATABASE_URL, REDIS_URL) often belong to the application: they are read
    // only when LATCH_STORE names that backend, never to switch one on.
    const fallbacks =
      "fallbacks" in variable &&
      (!("fallbackOnlyFor" in variable) || values.LATCH_STORE === variable.fallbackOnlyFor)
        ? variable.fallbacks
        : [];
    const names = [name, ...fallbacks];
    // The Latch name first, from the environment then the file; only then a generic fallback
    // (an application's own DATABASE_URL must not override LATCH_DATABASE_URL in the file).
    let found: { value: string; source: Source } | undefined;
    for (const candidate of names) {
      const fromEnv = env[candidate];
      if (fromEnv !== undefined && fromEnv !== "") {
        found = { value: fromEnv, source: { name: candidate } };
        break;
      }
      const fromFile = configPath === undefined ? undefined : file[candidate];
      if (fromFile !== undefined && fromFile !== "") {
        found = { value: fromFile, source: { name: candidate, file: configPath as string } };
        break;
      }
    }
    if (found === undefined) continue;
    const result = variable.schema.safeParse(found.value);
    if (result.success) {
      (values as Record<string, unknown>)[name] = result.data;
      sources[name] = found.source;
    } else {
      issues.push({ path: label(found.source), message: result.error.issues[0]?.message ?? "invalid" });
    }
  }
  if (issues.length === 0) {
    const store = values.LATCH_STORE ?? (values.LATCH_DATABASE_URL !== undefined ? "postgres" : "memory");
    if (store === "redis" && values.LATCH_REDIS_URL === undefined) {
      issues.push({ path: "LATCH_REDIS_URL", message: "required with LATCH_STORE=redis (or set REDIS_URL)" });
    }
    if (store === "postgres" && values.LATCH_DATABASE_URL === undefined) {
      issues.push({
        path: "LATCH_DATABASE_URL",
        message: "required with LATCH_STORE=postgres (or set DATABASE_URL)",
      });
    }
    for (const dependent of ["LATCH_S3_ENDPOINT", "LATCH_S3_PREFIX", "LATCH_S3_REGION"] as const) {
      const source = sources[dependent];
      if (source !== undefined && values.LATCH_S3_BUCKET === undefined)
        issues.push({ path: label(source), message: "needs LATCH_S3_BUCKET" });
    }
    for (const dependent of ["LATCH_NATS_STREAM", "LATCH_NATS_CREDS"] as const) {
      const source = sources[dependent];
      if (source !== undefined && values.LATCH_NATS_URL === undefined)
        issues.push({ path: label(source), message: "needs LATCH_NATS_URL" });
    }
    const pgliteSource = sources.LATCH_PGLITE_DIR;
    if (pgliteSource !== undefined && store !== "pglite")
      issues.push({ path: label(pgliteSource), message: "only used with LATCH_STORE=pglite" });
    if (issues.length === 0) return toSettings(store, values);
  }
  throw new LatchValidationError({ subject: "Latch configuration", issues });
}

function toSettings(store: StoreKind, v: Values): LatchSettings {
  const settings: LatchSettings = {
    store,
    schema: v.LATCH_SCHEMA ?? "latch",
    poolSize: v.LATCH_POOL_SIZE ?? 4,
    migrate: v.LATCH_MIGRATE === "true" || v.LATCH_MIGRATE === "1",
  };
  if (store === "postgres" && v.LATCH_DATABASE_URL !== undefined) settings.databaseUrl = v.LATCH_DATABASE_URL;
  if (v.LATCH_PGLITE_DIR !== undefined) settings.pgliteDir = v.LATCH_PGLITE_DIR;
  if (v.LATCH_REDIS_URL !== undefined)
    settings.redis = { url: v.LATCH_REDIS_URL, keyPrefix: v.LATCH_REDIS_PREFIX ?? "latch" };
  if (v.LATCH_S3_BUCKET !== undefined) {
    settings.s3 = {
      bucket: v.LATCH_S3_BUCKET,
      ...(v.LATCH_S3_ENDPOINT !== undefined ? { endpoint: v.LATCH_S3_ENDPOINT } : {}),
      ...(v.LATCH_S3_PREFIX !== undefined ? { prefix: v.LATCH_S3_PREFIX } : {}),
      ...(v.LATCH_S3_REGION !== undefined ? { region: v.LATCH_S3_REGION } : {}),
    };
  }
  if (v.LATCH_EXPORT_DIR !== undefined) settings.exportDir = v.LATCH_EXPORT_DIR;
  if (v.LATCH_NATS_URL !== undefined)
    settings.nats = {
      url: v.LATCH_NATS_URL,
      stream: v.LATCH_NATS_STREAM ?? "LATCH_INGEST",
      ...(v.LATCH_NATS_CREDS !== undefined ? { creds: v.LATCH_NATS_CREDS } : {}),
    };
  if (v.LATCH_PRICES_FILE !== undefined) settings.pricesFile = v.LATCH_PRICES_FILE;
  if (v.LATCH_SPOOL_DIR !== undefined) settings.spoolDir = v.LATCH_SPOOL_DIR;
  return settings;
}

/** A one-line description of the settings, without secrets (URLs show host and port only). */
export function describeSettings(s: LatchSettings): string {
  const parts: string[] = [];
  if (s.store === "postgres") parts.push(`PostgreSQL ${hostOf(s.databaseUrl)} (schema ${s.schema})`);
  else if (s.store === "pglite")
    parts.push(
      `PGlite ${s.pgliteDir === undefined ? "in memory" : `in ${s.pgliteDir}`} (schema ${s.schema})`,
    );
  else if (s.store === "redis" && s.redis)
    parts.push(`Redis ${hostOf(s.redis.url)} (prefix ${s.redis.keyPrefix})`);
  else parts.push("in-memory stores");
  if (s.redis && s.store !== "redis")
    parts.push(`Redis ${hostOf(s.redis.url)} (prefix ${s.redis.keyPrefix}) for quota and counters`);
  if (s.nats) parts.push(`record() publishes to JetStream stream ${s.nats.stream} at ${hostOf(s.nats.url)}`);
  if (s.s3) parts.push(`export to s3://${s.s3.bucket}/${s.s3.prefix ?? ""}`);
  else if (s.exportDir !== undefined) parts.push(`export to ${s.exportDir}`);
  return parts.join("; ");
}

/** `host:port` of a URL, never its user or password. */
export function hostOf(value: string | undefined): string {
  if (value === undefined) return "?";
  try {
    const u = new URL(value);
    return u.port === "" ? u.hostname : `${u.hostname}:${u.port}`;
  } catch {
    return "?";
  }
}
