/**
 * `latch serve` and `latch keys create` on PostgreSQL (`DATABASE_URL`, default the local test
 * server): the billing API of @latch/http on a migrated schema, reached with a key the CLI
 * issued; an unmigrated schema refused before anything listens; Ctrl-C stops it with exit 0.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startCli, waitForStderr } from "./support/cli.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_serve_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
const env = {
  LATCH_DATABASE_URL: databaseUrl,
  LATCH_SCHEMA: schema,
  LATCH_API_KEY_SECRET: "test-secret-test-secret-test-secret-0123",
};
const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe("latch serve", () => {
  it("refuses an unmigrated schema before listening, saying to run latch migrate", async () => {
    const run = await runCli(["serve", "--port", "0"], { env: { ...env, LATCH_SCHEMA: `${schema}_never` } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`run \`latch migrate --schema ${schema}_never\``);
    expect(run.stderr).not.toContain("billing API on");
  });

  it("requires the API-key secret from the environment, naming it", async () => {
    const run = await runCli(["serve"], { env: { ...env, LATCH_API_KEY_SECRET: undefined } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^latch: LATCH_API_KEY_SECRET: required/);
  });

  it("serves the billing API with a key from `latch keys create`, and stops on Ctrl-C with exit 0", async () => {
    expect((await runCli(["migrate"], { env })).code).toBe(0);
    const created = await runCli(["keys", "create", "--tenant", "acme", "--json"], { env });
    expect(created.code).toBe(0);
    const { key, plaintext } = JSON.parse(created.stdout) as { key: { id: string }; plaintext: string };
    expect(plaintext).toMatch(/^latch_(live|test)_/);

    const { child, done } = startCli(["serve", "--port", "0"], { env });
    const banner = await waitForStderr(child, (s) => /billing API on http:\/\/127\.0\.0\.1:\d+/.test(s));
    const base = /http:\/\/127\.0\.0\.1:\d+/.exec(banner)?.[0] as string;
    try {
      expect((await fetch(`${base}/openapi.json`)).status).toBe(200);
      expect((await fetch(`${base}/api/billing/keys`)).status).toBe(401);
      const listed = await fetch(`${base}/api/billing/keys`, {
        headers: { authorization: `Bearer ${plaintext}` },
      });
      expect(listed.status).toBe(200);
      expect(JSON.stringify(await listed.json())).toContain(key.id);
    } finally {
      child.kill("SIGINT");
    }
    const stopped = await done;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain("latch serve: stopped");
  }, 120_000);
});
