import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  parseObservation,
  type RatedUsageRecord,
} from "@latch/core";
import type { ChangeLogStatus } from "@latch/core/adapter";
import { migrate, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_cli_status_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
const consumer = "billing-s3";
const env = { DATABASE_URL: databaseUrl };
const storeFlags = ["--store", "postgres", "--schema", schema, "--consumer", consumer];
let pool: pg.Pool;
let dir: string;

const pricing = new InMemoryPricingSource([
  {
    snapshotId: "test:gpt-4o:2026-01",
    model: { billableModel: "gpt-4o" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
  },
]);

/** A rated gpt-4o call: 1,000 input and 200 output tokens, 0.0045 USD. */
function rated(eventId: string): RatedUsageRecord {
  const observation = parseObservation({
    eventId,
    subject: { tenantId: "acme" },
    meters: { input_tokens: 1_000, output_tokens: 200 },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-03-02T09:30:00Z", completedAt: "2026-03-02T09:30:01Z" },
  });
  const snapshot = pricing.require(observation.model, observation.timing.completedAt);
  return new DefaultRatingEngine().rate(observation, snapshot, { ratedAt: "2026-03-02T09:30:02Z" });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * stderr without pg's DeprecationWarning about queued queries (printed by node for
 * @latch/postgres's pipelined BEGIN/statement/COMMIT; not this command's output).
 */
const errors = (stderr: string) =>
  stderr.split("\n").filter((line) => line !== "" && !/DeprecationWarning|--trace-deprecation/.test(line));

/** Polls the status until `done` (other test runs share the server and its transactions). */
async function until(done: (s: ChangeLogStatus) => boolean): Promise<ChangeLogStatus> {
  const store = new PostgresRatedRecordStore(pool, { schema });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await store.changeLogStatus({ consumer });
    if (done(status) || Date.now() > deadline) return status;
    await sleep(50);
  }
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  dir = await mkdtemp(join(tmpdir(), "latch-cli-status-"));
  await migrate(pool, { schema });
});
afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
  await rm(dir, { recursive: true, force: true });
});

describe("latch export status on PostgreSQL", () => {
  it("names the open transaction that holds the change log back, and latch export says so instead of up to date", async () => {
    const store = new PostgresRatedRecordStore(pool, { schema });
    await store.put(rated("call-1:0:openai"));
    await until((s) => s.waiting === 0);
    const first = await runCli(["export", ...storeFlags, "--to", dir, "--no-progress"], { env });
    expect(errors(first.stderr)).toEqual([]);
    expect(first.stdout).toMatch(/^exported 1 rows in 1 batch\(es\)/);
    const cursor = await store.getCursor(consumer);

    const calm = await runCli(["export", "status", ...storeFlags], { env });
    expect(calm.code).toBe(0);
    expect(calm.stdout).toContain(`change log of PostgreSQL (schema ${schema}), consumer ${consumer}\n`);
    expect(calm.stdout).toContain(`  cursor:  ${cursor}\n`);
    expect(calm.stdout).toContain("  ready:   0 versions to export now\n");

    // A session keeps a transaction open after writing a version; another commits one after it.
    const blocker = new pg.Client({ connectionString: databaseUrl, application_name: "latch-cli-blocker" });
    await blocker.connect();
    try {
      await blocker.query("BEGIN");
      await new PostgresRatedRecordStore(blocker, { schema }).put(rated("call-2:0:openai"));
      const pid = ((await blocker.query("SELECT pg_backend_pid() AS pid")).rows[0] as { pid: number }).pid;
      await store.put(rated("call-3:0:openai"));
      const held = await until((s) => s.heldBack?.by === "transaction" && s.heldBack.pid === pid);
      expect(held.heldBack, "another session's older transaction stayed open all along").toMatchObject({
        pid,
      });

      // Run together: every second the blocker stays open, every change log on the server waits.
      const [text, json, exported] = await Promise.all([
        runCli(["export", "status", ...storeFlags], { env }),
        runCli(["export", "status", ...storeFlags, "--json"], { env }),
        runCli(["export", ...storeFlags, "--to", dir, "--no-progress"], { env }),
      ]);
      expect(errors(text.stderr)).toEqual([]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("  ready:   0 versions to export now\n");
      expect(text.stdout).toContain("  waiting: 1 version stored but held back\n");
      expect(text.stdout).toMatch(
        new RegExp(
          `  held back by: transaction pid ${pid} \\(application "latch-cli-blocker", user \\S+, database \\S+\\), idle in transaction, open for \\d[^,]*since \\S+Z, xid \\d+\\n`,
        ),
      );
      expect(text.stdout).toContain(`SELECT pg_terminate_backend(${pid})`);

      expect(json.code).toBe(0);
      const status = JSON.parse(json.stdout) as ChangeLogStatus & { store: string };
      expect(status).toMatchObject({
        store: `PostgreSQL (schema ${schema})`,
        consumer,
        cursor,
        ready: 0,
        waiting: 1,
        capped: false,
        heldBack: {
          by: "transaction",
          pid,
          state: "idle in transaction",
          applicationName: "latch-cli-blocker",
        },
      });
      expect((status.heldBack as { ageMs: number }).ageMs).toBeGreaterThanOrEqual(0);

      expect(errors(exported.stderr)).toEqual([]);
      expect(exported.code).toBe(0);
      expect(exported.stdout).not.toMatch(/up to date/);
      expect(exported.stdout).toMatch(
        new RegExp(
          `^nothing exported for consumer ${consumer} \\(PostgreSQL \\(schema ${schema}\\)\\): 1 version stored after the cursor is held back by transaction pid ${pid} \\(application "latch-cli-blocker"`,
        ),
      );
      expect(exported.stdout).toContain("it is exported once it ends (latch export status)\n");
      expect(await store.getCursor(consumer)).toBe(cursor);

      await blocker.query("COMMIT");
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      await blocker.end();
    }

    // Once it ends, both versions go out and nothing of it is named any more.
    await until((s) => s.waiting === 0);
    const after = await runCli(["export", "status", ...storeFlags, "--json"], { env });
    const afterStatus = JSON.parse(after.stdout) as ChangeLogStatus;
    expect(afterStatus).toMatchObject({ ready: 2, waiting: 0 });
    const done = await runCli(["export", ...storeFlags, "--to", dir, "--no-progress"], { env });
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^exported 2 rows in 1 batch\(es\)/);
    expect(done.stdout).not.toMatch(/held back/);
  }, 180_000);
});
