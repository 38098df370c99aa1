import { describe, expect, it } from "vitest";
import { configFromEnv } from "../src/config.js";

describe("the gateway's configuration from the environment (read by @latch/config)", () => {
  it("embedded default: nothing set, export to a local folder", () => {
    expect(configFromEnv({})).toEqual({ exportDir: "latch-out/gateway" });
  });

  it("Postgres + Redis + S3 + NATS from the LATCH_* variables, the gateway's stream by default", () => {
    expect(
      configFromEnv({
        LATCH_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
        LATCH_REDIS_URL: "redis://127.0.0.1:6379",
        LATCH_S3_BUCKET: "billing",
        LATCH_S3_ENDPOINT: "http://127.0.0.1:4569",
        LATCH_S3_PREFIX: "gw/",
        LATCH_NATS_URL: "nats://127.0.0.1:4222",
        LATCH_INGEST_WORKERS: "2",
      }),
    ).toEqual({
      databaseUrl: "postgres://postgres@127.0.0.1:5432/test",
      redisUrl: "redis://127.0.0.1:6379",
      s3: { bucket: "billing", endpoint: "http://127.0.0.1:4569", forcePathStyle: true, prefix: "gw/" },
      nats: { url: "nats://127.0.0.1:4222", stream: "LATCH_GATEWAY", workers: 2 },
      exportDir: "latch-out/gateway",
    });
    expect(configFromEnv({ LATCH_NATS_URL: "nats://n:4222", LATCH_NATS_STREAM: "GW2" }).nats).toEqual({
      url: "nats://n:4222",
      stream: "GW2",
    });
  });

  it("an invalid value fails with the variable's name, not its value", () => {
    expect(() => configFromEnv({ LATCH_REDIS_URL: "http://:hunter2@cache" })).toThrow(
      "Invalid Latch configuration: LATCH_REDIS_URL: expected a redis:// or rediss:// URL",
    );
    expect(() => configFromEnv({ LATCH_REDIS_URL: "http://:hunter2@cache" })).not.toThrow(/hunter2/);
    expect(() => configFromEnv({ LATCH_INGEST_WORKERS: "many" })).toThrow(
      "LATCH_INGEST_WORKERS: expected an integer from 0 to 999",
    );
  });

  it("LATCH_RECONCILE_EVERY_MS: digits only, from 1 to 2^31 - 1; a bad value names the variable and echoes what it was given if short and printable", () => {
    expect(configFromEnv({}).reconcileEveryMs).toBeUndefined(); // the loop's default, 60 s
    expect(configFromEnv({ LATCH_RECONCILE_EVERY_MS: "1" }).reconcileEveryMs).toBe(1);
    expect(configFromEnv({ LATCH_RECONCILE_EVERY_MS: "30000" }).reconcileEveryMs).toBe(30_000);
    expect(configFromEnv({ LATCH_RECONCILE_EVERY_MS: "2147483647" }).reconcileEveryMs).toBe(2_147_483_647);
    expect(configFromEnv({ LATCH_RECONCILE_EVERY_MS: "000000000000060000" }).reconcileEveryMs).toBe(60_000);
    const refused = (raw: string) =>
      `LATCH_RECONCILE_EVERY_MS: expected a whole number of milliseconds from 1 to 2147483647, got ${JSON.stringify(raw)}`;
    for (const raw of [
      "",
      "abc",
      "1.5",
      "0",
      "00",
      "-1",
      "+5",
      "1e3",
      "0x10",
      " 5",
      "5 ",
      "60s",
      "1_000",
      "2147483648",
      "99999999999",
      "Infinity",
    ])
      expect(() => configFromEnv({ LATCH_RECONCILE_EVERY_MS: raw }), raw).toThrow(refused(raw));
    // Only a short value of printable ASCII is echoed: a longer one may be a secret put in the
    // wrong variable (a database URL, a key), and a control or Unicode line separator would
    // break the log line. Those are described, not shown.
    const described = (length: number) =>
      `LATCH_RECONCILE_EVERY_MS: expected a whole number of milliseconds from 1 to 2147483647, got a value of ${length} characters (not shown: longer than 16 or not printable ASCII)`;
    for (const raw of [
      "9".repeat(40),
      "postgres://app:hunter2@db/prod",
      "sk-live-0123456789abcdef",
      "5\r\nlevel=info forged",
      "5\u2028x",
      "\u009b31m",
      "１２",
      "١٢",
      "\u0000",
      "\ud800",
    ])
      expect(() => configFromEnv({ LATCH_RECONCILE_EVERY_MS: raw }), JSON.stringify(raw)).toThrow(
        described(raw.length),
      );
    for (const raw of ["postgres://app:hunter2@db/prod", "sk-live-0123456789abcdef"])
      expect(() => configFromEnv({ LATCH_RECONCILE_EVERY_MS: raw })).not.toThrow(/hunter2|sk-live/);
  });
});
