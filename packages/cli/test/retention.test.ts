import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DefaultRatingEngine, type PriceSnapshot } from "@latch/core";
import { migrate, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_cli_ret_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
let pool: pg.Pool;
let dir: string;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  dir = await mkdtemp(join(tmpdir(), "latch-cli-ret-"));
  await migrate(pool, { schema });
});
afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
  await rm(dir, { recursive: true, force: true });
});

const engine = new DefaultRatingEngine();
const snapshot: PriceSnapshot = {
  snapshotId: "cli-retention:gpt-4o",
  model: { billableModel: "gpt-4o" },
  currency: "USD",
  effectiveFrom: "2020-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
};
const at = (completedAt: string) =>
  engine.rate(
    {
      eventId: `ret-${randomUUID()}`,
      subject: { tenantId: "acme" },
      meters: { input_tokens: 1_000, output_tokens: 200 },
      model: { billableModel: "gpt-4o", vendor: "openai" },
      provider: { providerId: "openai" },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: completedAt, completedAt },
    },
    snapshot,
    { ratedAt: completedAt },
  );

describe("latch retention apply", () => {
  it("refuses before the export, prints a dry run, then drops the exported month", async () => {
    const store = new PostgresRatedRecordStore(pool, { schema });
    await store.putMany([at("2025-01-10T00:00:00Z"), at("2025-01-11T00:00:00Z"), at("2025-02-03T00:00:00Z")]);
    const env = { DATABASE_URL: databaseUrl };
    // Months without a partition wait in DEFAULT until maintenance, which `latch migrate` runs.
    expect((await runCli(["migrate", "--schema", schema], { env })).code).toBe(0);
    const flags = ["--schema", schema, "--before", "2025-02", "--to", dir, "--consumer", "billing"];

    const refused = await runCli(["retention", "apply", ...flags], { env });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("2025-01: 0 observation(s), 2 rated record(s): refused");
    expect(refused.stdout).toContain("after consumer billing's cursor");

    // Another session's open transaction may hold the change log back for a while: export until all is out.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const out = await runCli(
        [
          "export",
          "--store",
          "postgres",
          "--schema",
          schema,
          "--to",
          dir,
          "--consumer",
          "billing",
          "--no-progress",
          "--json",
        ],
        { env },
      );
      expect(out.code).toBe(0);
      const cursor = await store.getCursor("billing");
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM "${schema}".rated_records r
         WHERE $1::numeric IS NULL OR (r.xid::text::numeric * 10000000000000000000 + r.id) > $1::numeric`,
        [cursor ?? null],
      );
      if ((rows[0] as { n: number }).n === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const dry = await runCli(["retention", "apply", ...flags], { env });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("2025-01: 0 observation(s), 2 rated record(s): would be dropped");
    expect(dry.stdout).toContain("dry run: run again with --yes");

    const applied = await runCli(["retention", "apply", ...flags, "--yes", "--json"], { env });
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const result = JSON.parse(applied.stdout) as { applied: boolean; months: Array<{ month: string }> };
    expect(result.applied).toBe(true);
    expect(result.months.map((m) => m.month)).toEqual(["2025-01"]);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".rated_records`);
    expect(rows).toEqual([{ n: 1 }]);
    await expect(store.put(at("2025-01-20T00:00:00Z"))).rejects.toMatchObject({ code: "invalid_input" });
  });

  it("needs --before as a month", async () => {
    const out = await runCli(["retention", "apply", "--schema", schema, "--before", "2025-13", "--to", dir], {
      env: { DATABASE_URL: databaseUrl },
    });
    expect(out.code).toBe(2);
    expect(out.stderr).toContain("--before");
  });
});
