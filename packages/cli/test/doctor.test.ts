import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { migrate, REQUIRED_SCHEMA_VERSION } from "@latch/postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const schema = `latch_doctor_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
let pool: pg.Pool;
/** A private redis-server whose maxmemory-policy can evict keys (the shared one stays untouched). */
let evicting: { child: ChildProcess; url: string } | undefined;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startEvictingRedis(): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--maxmemory-policy",
      "volatile-lru",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.stdout?.setEncoding("utf8").on("data", (s: string) => {
      if (s.includes("Ready to accept connections")) resolve();
    });
  });
  return { child, url: `redis://127.0.0.1:${port}` };
}

/** Only the variables a test names: nothing leaks in from the machine's environment. */
const CLEAN = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith("LATCH_") || k === "DATABASE_URL" || k === "REDIS_URL")
    .map((k) => [k, undefined]),
);
const doctor = (env: Record<string, string>, args: string[] = []) =>
  runCli(["doctor", ...args], { env: { ...CLEAN, ...env } });

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
});
afterAll(async () => {
  evicting?.child.kill();
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
});

describe("latch doctor", () => {
  it("with nothing configured: in-memory stores, exit 0", async () => {
    const run = await doctor({});
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("ok    store: in-memory stores");
  });

  it("warns (exit 0) when DATABASE_URL or REDIS_URL is set but Latch runs on memory", async () => {
    const run = await doctor({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("ok    store: in-memory stores");
    expect(run.stdout).toContain("warn  store: DATABASE_URL is set but not used");
    expect(run.stdout).toContain("fix: set LATCH_STORE=postgres");
    expect(run.stdout).toContain("warn  quota: REDIS_URL is set but not used");
    expect(run.stdout).not.toContain("127.0.0.1");
  });

  it("names the bad variable, never its value, and exits 1", async () => {
    const run = await doctor({ LATCH_DATABASE_URL: "mysql://root:hunter2@db/x", LATCH_SCHEMA: "Bad" });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      "fail  configuration: LATCH_DATABASE_URL: expected a postgres:// or postgresql:// URL",
    );
    expect(run.stdout).toContain("fail  configuration: LATCH_SCHEMA: expected [a-z_][a-z0-9_]{0,62}");
    expect(`${run.stdout}${run.stderr}`).not.toContain("hunter2");
    expect(run.stderr).toBe("latch: doctor: 2 problems found\n");
  });

  it("on an unmigrated schema says to run latch migrate; once migrated, everything is ok", async () => {
    const env = { LATCH_DATABASE_URL: databaseUrl, LATCH_SCHEMA: schema, LATCH_REDIS_URL: redisUrl };
    const before = await doctor(env);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/^ok {4}postgres: connected to 127\.0\.0\.1:5432 \(PostgreSQL /m);
    expect(before.stdout).toContain(
      `fail  migrations: schema ${schema} is not migrated (this version needs migration ${REQUIRED_SCHEMA_VERSION})`,
    );
    expect(before.stdout).toContain(
      `fix: run \`latch migrate\` with the same LATCH_DATABASE_URL and LATCH_SCHEMA=${schema}`,
    );
    expect(before.stdout).toContain("ok    redis: connected to 127.0.0.1:6379");
    expect(before.stdout).toContain("ok    redis settings: maxmemory-policy noeviction");
    expect(before.stderr).toBe("latch: doctor: 1 problem found\n");

    await migrate(pool, { schema });
    const after = await doctor(env, ["--json"]);
    // (@latch/postgres pipelines BEGIN/statement/COMMIT on one client, which pg 8.23 reports
    // with a DeprecationWarning on stderr: not a doctor finding.)
    expect(after.stderr).not.toMatch(/^latch:/m);
    expect(after.code).toBe(0);
    const report = JSON.parse(after.stdout) as {
      ok: boolean;
      checks: Array<{ check: string; status: string; detail: string }>;
    };
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => [c.check, c.status])).toEqual([
      ["configuration", "ok"],
      ["postgres", "ok"],
      ["migrations", "ok"],
      ["export", "ok"],
      ["redis", "ok"],
      ["redis settings", "ok"],
    ]);
    expect(report.checks.find((c) => c.check === "migrations")?.detail).toBe(
      `schema ${schema} at migration ${REQUIRED_SCHEMA_VERSION} (this version needs ${REQUIRED_SCHEMA_VERSION})`,
    );
    expect(report.checks.find((c) => c.check === "export")?.detail).toBe(
      "consumer latch-cli: 0 version(s) ready to export, 0 held back",
    );
  });

  it("says what to fix when Postgres and Redis cannot be reached, without the password", async () => {
    const run = await doctor({
      LATCH_DATABASE_URL: "postgres://postgres:hunter2@127.0.0.1:1/test",
      LATCH_REDIS_URL: "redis://:hunter2@127.0.0.1:1",
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("fail  postgres: cannot connect to 127.0.0.1:1 (");
    expect(run.stdout).toContain("fix: check LATCH_DATABASE_URL");
    expect(run.stdout).toContain("fail  redis: cannot connect to 127.0.0.1:1 (");
    expect(run.stdout).toContain("fix: check LATCH_REDIS_URL");
    expect(`${run.stdout}${run.stderr}`).not.toContain("hunter2");
    expect(run.stderr).toBe("latch: doctor: 2 problems found\n");
  });

  it("fails on a Redis whose maxmemory-policy can evict quota holds, and says to set noeviction", async () => {
    evicting = await startEvictingRedis();
    const run = await doctor({ LATCH_REDIS_URL: evicting.url });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`ok    redis: connected to ${evicting.url.slice("redis://".length)}`);
    expect(run.stdout).toMatch(/^fail {2}redis settings: .*volatile-lru/m);
    expect(run.stdout).toContain("fix: set maxmemory-policy noeviction");
    expect(run.stderr).toBe("latch: doctor: 1 problem found\n");
  });

  it("warns (without failing) when the NATS ingest stream has no consumer yet", async () => {
    const stream = `DOCTOR_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const run = await doctor({ LATCH_NATS_URL: "nats://127.0.0.1:4222", LATCH_NATS_STREAM: stream });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`warn  nats: stream ${stream} or its ingest consumer is missing`);
    expect(run.stdout).toContain("fix: start the application");
  });

  it("reaches a NATS server that requires a password with the credentials in LATCH_NATS_URL, never printing them", async () => {
    const port = await freePort();
    const server = spawn(
      existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server",
      ["-a", "127.0.0.1", "-p", String(port), "--user", "doctor", "--pass", "s3cret-pw"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let log = "";
        server.once("error", reject);
        server.once("exit", (code) => reject(new Error(`nats-server exited ${code}: ${log}`)));
        server.stderr?.setEncoding("utf8").on("data", (s: string) => {
          log += s;
          if (log.includes("Server is ready")) resolve();
        });
      });
      const stream = `DOCTOR_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
      const ok = await doctor({
        LATCH_NATS_URL: `nats://doctor:s3cret-pw@127.0.0.1:${port}`,
        LATCH_NATS_STREAM: stream,
      });
      // Past authentication: the server answered (it has no JetStream, so the stream is missing).
      expect(ok.stdout).toContain(`warn  nats: stream ${stream} or its ingest consumer is missing`);
      const refused = await doctor({ LATCH_NATS_URL: `nats://doctor:wrong-pw@127.0.0.1:${port}` });
      expect(refused.code).not.toBe(0);
      expect(refused.stdout).toContain(`fail  nats: cannot connect to 127.0.0.1:${port}`);
      expect(refused.stdout).toContain("Authorization Violation");
      for (const out of [ok.stdout, ok.stderr, refused.stdout, refused.stderr]) {
        expect(out).not.toContain("s3cret-pw");
        expect(out).not.toContain("wrong-pw");
      }
    } finally {
      server.kill("SIGKILL");
    }
  }, 60_000);
});
