import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLatch, InMemoryPricingSource, LatchValidationError } from "@latch/core";
import { afterAll, describe, expect, it } from "vitest";
import { LATCH_VARIABLES, loadLatchConfig, readLatchSettings } from "../src/index.js";

const SECRET = "s3cr3t-Pa55";

/** The validation error `fn` throws, with its issues. */
function failure(fn: () => unknown): LatchValidationError {
  try {
    fn();
  } catch (error) {
    if (LatchValidationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a LatchValidationError");
}

describe("readLatchSettings", () => {
  it("defaults to in-memory stores with nothing set", () => {
    expect(readLatchSettings({})).toEqual({ store: "memory", schema: "latch", poolSize: 4, migrate: false });
  });

  it("picks Postgres when a database URL is set, and reads every backend's variables", () => {
    const settings = readLatchSettings({
      LATCH_DATABASE_URL: "postgres://app@db:5432/billing",
      LATCH_SCHEMA: "billing",
      LATCH_POOL_SIZE: "8",
      LATCH_MIGRATE: "true",
      LATCH_REDIS_URL: "redis://cache:6379",
      LATCH_REDIS_PREFIX: "app",
      LATCH_S3_BUCKET: "latch-exports",
      LATCH_S3_ENDPOINT: "http://127.0.0.1:9000",
      LATCH_S3_PREFIX: "prod/",
      LATCH_S3_REGION: "eu-west-1",
      LATCH_NATS_URL: "nats://127.0.0.1:4222",
      LATCH_NATS_STREAM: "BILLING",
      LATCH_PRICES_FILE: "prices.json",
      LATCH_SPOOL_DIR: "/var/lib/latch/spool",
    });
    expect(settings).toEqual({
      store: "postgres",
      databaseUrl: "postgres://app@db:5432/billing",
      schema: "billing",
      poolSize: 8,
      migrate: true,
      redis: { url: "redis://cache:6379", keyPrefix: "app" },
      s3: {
        bucket: "latch-exports",
        endpoint: "http://127.0.0.1:9000",
        prefix: "prod/",
        region: "eu-west-1",
      },
      nats: { url: "nats://127.0.0.1:4222", stream: "BILLING" },
      pricesFile: "prices.json",
      spoolDir: "/var/lib/latch/spool",
    });
  });

  it("accepts the documented older names, the LATCH_ name winning when both are set", () => {
    expect(readLatchSettings({ LATCH_STORE: "postgres", DATABASE_URL: "postgres://db/a" })).toMatchObject({
      store: "postgres",
      databaseUrl: "postgres://db/a",
    });
    expect(
      readLatchSettings({ LATCH_STORE: "redis", REDIS_URL: "redis://r", LATCH_KEY_PREFIX: "k" }),
    ).toMatchObject({
      store: "redis",
      redis: { url: "redis://r", keyPrefix: "k" },
    });
    expect(
      readLatchSettings({
        LATCH_STORE: "postgres",
        DATABASE_URL: "postgres://db/old",
        LATCH_DATABASE_URL: "postgres://db/new",
      }).databaseUrl,
    ).toBe("postgres://db/new");
  });

  it("never switches a backend on from the application's own DATABASE_URL or REDIS_URL", () => {
    expect(readLatchSettings({ DATABASE_URL: "mysql://app@db/shop", REDIS_URL: "http://cache" })).toEqual({
      store: "memory",
      schema: "latch",
      poolSize: 4,
      migrate: false,
    });
  });

  it("keeps every store in Redis with LATCH_STORE=redis, which needs a Redis URL", () => {
    expect(readLatchSettings({ LATCH_STORE: "redis", REDIS_URL: "redis://r:6380" })).toMatchObject({
      store: "redis",
      redis: { url: "redis://r:6380", keyPrefix: "latch" },
    });
    expect(failure(() => readLatchSettings({ LATCH_STORE: "redis" })).issues).toEqual([
      { path: "LATCH_REDIS_URL", message: "required with LATCH_STORE=redis (or set REDIS_URL)" },
    ]);
  });

  it("keeps memory when LATCH_STORE says so, even with a database URL in the environment", () => {
    const settings = readLatchSettings({ LATCH_STORE: "memory", DATABASE_URL: "postgres://db/a" });
    expect(settings.store).toBe("memory");
    expect(settings.databaseUrl).toBeUndefined();
  });

  // One bad value per variable: the error names that variable and never the value.
  const BAD: Record<(typeof LATCH_VARIABLES)[number], string> = {
    LATCH_STORE: `mongo-${SECRET}`,
    LATCH_DATABASE_URL: `mysql://root:${SECRET}@db/x`,
    LATCH_PGLITE_DIR: "x".repeat(5000),
    LATCH_SCHEMA: `Bad-${SECRET}`,
    LATCH_POOL_SIZE: `${SECRET}`,
    LATCH_MIGRATE: `yes-${SECRET}`,
    LATCH_REDIS_URL: `http://:${SECRET}@cache`,
    LATCH_REDIS_PREFIX: "p".repeat(65),
    LATCH_S3_BUCKET: `Bucket_${SECRET}`,
    LATCH_S3_ENDPOINT: `ftp://${SECRET}@s3`,
    LATCH_S3_PREFIX: "p".repeat(513),
    LATCH_S3_REGION: `EU ${SECRET}`,
    LATCH_EXPORT_DIR: "d".repeat(5000),
    LATCH_NATS_URL: `http://u:${SECRET}@nats`,
    LATCH_NATS_STREAM: `a.b ${SECRET}`,
    LATCH_NATS_CREDS: `${SECRET}${"c".repeat(5000)}`,
    LATCH_PRICES_FILE: "f".repeat(5000),
    LATCH_SPOOL_DIR: "s".repeat(5000),
  };
  // What each variable needs beside it to be valid on its own.
  const CONTEXT: Partial<Record<(typeof LATCH_VARIABLES)[number], Record<string, string>>> = {
    LATCH_PGLITE_DIR: { LATCH_STORE: "pglite" },
    LATCH_REDIS_PREFIX: { LATCH_REDIS_URL: "redis://cache" },
    LATCH_S3_ENDPOINT: { LATCH_S3_BUCKET: "b-1" },
    LATCH_S3_PREFIX: { LATCH_S3_BUCKET: "b-1" },
    LATCH_S3_REGION: { LATCH_S3_BUCKET: "b-1" },
    LATCH_NATS_STREAM: { LATCH_NATS_URL: "nats://n" },
    LATCH_NATS_CREDS: { LATCH_NATS_URL: "nats://n" },
  };
  for (const name of LATCH_VARIABLES) {
    it(`names ${name} when its value is invalid, without echoing it`, () => {
      const error = failure(() => readLatchSettings({ ...CONTEXT[name], [name]: BAD[name] }));
      expect(error.issues.map((i) => i.path)).toEqual([name]);
      expect(error.message).toContain(name);
      expect(error.message).not.toContain(SECRET);
      expect(JSON.stringify(error.issues)).not.toContain(SECRET);
      expect(error.message).not.toContain(BAD[name].slice(0, 20));
    });
  }

  it("names the fallback variable when the value came from it", () => {
    const error = failure(() =>
      readLatchSettings({ LATCH_STORE: "postgres", DATABASE_URL: `mysql://root:${SECRET}@db/x` }),
    );
    expect(error.issues).toEqual([
      { path: "DATABASE_URL", message: "expected a postgres:// or postgresql:// URL" },
    ]);
    expect(error.message).not.toContain(SECRET);
  });

  it("reports every problem at once", () => {
    const error = failure(() =>
      readLatchSettings({ LATCH_SCHEMA: "A", LATCH_POOL_SIZE: "0", LATCH_MIGRATE: "maybe" }),
    );
    expect(error.issues.map((i) => i.path)).toEqual(["LATCH_SCHEMA", "LATCH_POOL_SIZE", "LATCH_MIGRATE"]);
  });

  it("requires a database URL with LATCH_STORE=postgres, and a bucket or URL beside dependent variables", () => {
    expect(failure(() => readLatchSettings({ LATCH_STORE: "postgres" })).issues).toEqual([
      { path: "LATCH_DATABASE_URL", message: "required with LATCH_STORE=postgres (or set DATABASE_URL)" },
    ]);
    expect(failure(() => readLatchSettings({ LATCH_S3_PREFIX: "p/" })).issues).toEqual([
      { path: "LATCH_S3_PREFIX", message: "needs LATCH_S3_BUCKET" },
    ]);
    expect(failure(() => readLatchSettings({ LATCH_NATS_STREAM: "S" })).issues).toEqual([
      { path: "LATCH_NATS_STREAM", message: "needs LATCH_NATS_URL" },
    ]);
    expect(failure(() => readLatchSettings({ LATCH_NATS_CREDS: "./app.creds" })).issues).toEqual([
      { path: "LATCH_NATS_CREDS", message: "needs LATCH_NATS_URL" },
    ]);
    expect(
      readLatchSettings({ LATCH_NATS_URL: "nats://u:p%40ss@n:4222", LATCH_NATS_CREDS: "./app.creds" }).nats,
    ).toEqual({ url: "nats://u:p%40ss@n:4222", stream: "LATCH_INGEST", creds: "./app.creds" });
    expect(failure(() => readLatchSettings({ LATCH_PGLITE_DIR: "./data" })).issues).toEqual([
      { path: "LATCH_PGLITE_DIR", message: "only used with LATCH_STORE=pglite" },
    ]);
  });

  describe("LATCH_CONFIG", () => {
    const dir = mkdtempSync(join(tmpdir(), "latch-config-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };

    it("reads a JSON file with the same keys; the environment wins", () => {
      const path = file(
        "ok.json",
        JSON.stringify({
          LATCH_DATABASE_URL: "postgres://db/file",
          LATCH_SCHEMA: "from_file",
          LATCH_POOL_SIZE: 2,
        }),
      );
      expect(readLatchSettings({ LATCH_CONFIG: path, LATCH_SCHEMA: "from_env" })).toMatchObject({
        store: "postgres",
        databaseUrl: "postgres://db/file",
        schema: "from_env",
        poolSize: 2,
      });
    });

    it("names the key and the file for a bad or unknown key, without the value", () => {
      const path = file(
        "bad.json",
        JSON.stringify({ LATCH_REDIS_URL: `http://:${SECRET}@x`, LATCH_REDIS_UR: "x" }),
      );
      const unknown = failure(() => readLatchSettings({ LATCH_CONFIG: path }));
      expect(unknown.issues).toEqual([
        { path: `LATCH_REDIS_UR (in ${path})`, message: "not a Latch setting" },
      ]);
      const path2 = file("bad2.json", JSON.stringify({ LATCH_REDIS_URL: `http://:${SECRET}@x` }));
      const bad = failure(() => readLatchSettings({ LATCH_CONFIG: path2 }));
      expect(bad.issues).toEqual([
        { path: `LATCH_REDIS_URL (in ${path2})`, message: "expected a redis:// or rediss:// URL" },
      ]);
      expect(bad.message).not.toContain(SECRET);
    });

    it("names LATCH_CONFIG when the file is missing or not a JSON object", () => {
      expect(failure(() => readLatchSettings({ LATCH_CONFIG: join(dir, "missing.json") })).issues).toEqual([
        { path: "LATCH_CONFIG", message: "cannot read the file (ENOENT)" },
      ]);
      const notJson = file("not.json", `{"LATCH_DATABASE_URL": "postgres://u:${SECRET}@db`);
      const error = failure(() => readLatchSettings({ LATCH_CONFIG: notJson }));
      expect(error.issues).toEqual([{ path: "LATCH_CONFIG", message: "the file is not JSON" }]);
      expect(error.message).not.toContain(SECRET);
      expect(failure(() => readLatchSettings({ LATCH_CONFIG: file("arr.json", "[]") })).issues).toEqual([
        { path: "LATCH_CONFIG", message: "expected a JSON object" },
      ]);
    });
  });
});

describe("loadLatchConfig", () => {
  it("opens in-memory stores that createLatch takes as they are, and a folder exporter", async () => {
    const dir = mkdtempSync(join(tmpdir(), "latch-config-export-"));
    try {
      const backends = await loadLatchConfig({ LATCH_EXPORT_DIR: dir, LATCH_SPOOL_DIR: join(dir, "spool") });
      expect(backends.description).toBe(`in-memory stores; export to ${dir}`);
      expect(backends.exporter).toBeDefined();
      expect(backends.spoolDir).toBe(join(dir, "spool"));
      const latch = createLatch({ ...backends, pricing: new InMemoryPricingSource([]) });
      await backends.quota.setLimit("acme", 100);
      const hold = await latch.reserve({ account: "acme", amount: 40 });
      expect(hold.granted).toBe(true);
      await latch.close();
      await backends.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
