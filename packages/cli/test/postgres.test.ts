import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { RatedUsageRecord } from "@latch/core";
import { PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";
import { PRICE_FILE, writeUsageLog } from "./support/usage-log.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_cli_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
let pool: pg.Pool;
let dir: string;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  dir = await mkdtemp(join(tmpdir(), "latch-cli-pg-"));
});
afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
  await rm(dir, { recursive: true, force: true });
});

describe("latch migrate and reports on PostgreSQL", () => {
  it("migrates a fresh schema, and a second run is a no-op", async () => {
    const env = { DATABASE_URL: databaseUrl };
    const first = await runCli(["migrate", "--schema", schema, "--json"], { env });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const applied = JSON.parse(first.stdout) as { schema: string; version: number; applied: number[] };
    expect(applied.applied.length).toBeGreaterThan(0);
    // Every shipped migration, in order, up to the newest (numbers may skip one a branch reserved).
    expect(applied.applied[0]).toBe(1);
    expect(applied.applied.at(-1)).toBe(applied.version);
    expect([...applied.applied].sort((a, b) => a - b)).toEqual(applied.applied);
    expect(new Set(applied.applied).size).toBe(applied.applied.length);

    const ledger = async () =>
      (await pool.query(`SELECT version, applied_at FROM "${schema}".latch_migrations ORDER BY version`))
        .rows;
    const before = await ledger();

    const second = await runCli(["migrate", "--database-url", databaseUrl, "--schema", schema]);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(
      `schema ${schema} is up to date at migration ${applied.version}: nothing to apply\n`,
    );
    expect(await ledger()).toEqual(before);
  });

  it("reports the same summary from Postgres as from the rated file, and fails usage errors with 2", async () => {
    const log = join(dir, "log.jsonl");
    await writeUsageLog(log, 2_000);
    await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
    const rated = join(dir, "rated.jsonl");
    expect((await runCli(["rate", log, "--prices", join(dir, "prices.json"), "-o", rated])).code).toBe(0);

    const records: RatedUsageRecord[] = [];
    for await (const line of createInterface({
      input: createReadStream(rated),
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      records.push(JSON.parse(line));
    }
    const store = new PostgresRatedRecordStore(pool, { schema });
    for (let i = 0; i < records.length; i += 500) await store.putMany(records.slice(i, i + 500));

    const args = [
      "summary",
      "--group-by",
      "tenant,model",
      "--from",
      "2026-03-01",
      "--to",
      "2026-03-02",
      "--json",
    ];
    const fromPg = await runCli([...args, "--store", "postgres", "--schema", schema], {
      env: { DATABASE_URL: databaseUrl },
    });
    expect(fromPg.code).toBe(0);
    const fromFile = await runCli([...args, "--records", rated]);
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromPg.stdout)).toEqual(JSON.parse(fromFile.stdout));
    const groups = new Set(
      records.map((r) => `${r.observation.subject.tenantId}|${r.observation.model.billableModel}`),
    );
    expect(JSON.parse(fromPg.stdout).rows.length).toBe(groups.size);

    const lines = await runCli(
      ["lines", "--tenant", "acme", "--csv", "--store", "postgres", "--schema", schema],
      {
        env: { DATABASE_URL: databaseUrl },
      },
    );
    expect(lines.code).toBe(0);
    expect(lines.stdout.trimEnd().split("\r\n")).toHaveLength(
      1 + records.filter((r) => r.observation.subject.tenantId === "acme").length,
    );

    const noUrl = await runCli(["migrate"], {
      env: { DATABASE_URL: undefined, LATCH_DATABASE_URL: undefined },
    });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/--database-url: required/);

    const badSchema = await runCli(["migrate", "--database-url", databaseUrl, "--schema", "Bad-Name"]);
    expect(badSchema.code).toBe(2);
    expect(badSchema.stderr).toMatch(/--schema: expected/);

    const unreachable = await runCli([
      "migrate",
      "--database-url",
      "postgres://postgres@127.0.0.1:1/none",
      "--schema",
      schema,
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^latch: migrate: /);
  });

  it("a store on a schema nobody migrated says to run `latch migrate`, not the library's migrate(db, …)", async () => {
    const never = `${schema}_never`;
    const run = await runCli([
      "summary",
      "--store",
      "postgres",
      "--database-url",
      databaseUrl,
      "--schema",
      never,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^latch: schema ${never} is at migration 0; this version of Latch needs \\d+: run \`latch migrate --schema ${never}\` \\(with the same --database-url\\) first\n$`,
      ),
    );
    expect(run.stderr).not.toContain("migrate(db");
  });
});
