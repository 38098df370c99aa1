#!/usr/bin/env node
// Installs the packed tarballs of @latch/core and @latch/postgres into a fresh TypeScript
// project outside the workspace (as a user would: no workspace links, no `dev-source`), type
// checks a program written like the Postgres README's example against the published types,
// and runs it against PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
// in a fresh schema, dropped afterwards. Needs a build first (`pnpm build`).
// Usage: node scripts/check-install.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_install_${process.pid}_${Date.now().toString(36)}`;
const project = mkdtempSync(join(tmpdir(), "latch-install-"));
const run = (cmd, args, cwd, env = {}) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });

const program = `import { createLatch, InMemoryPricingSource } from "@latch/core";
import { migrate, PostgresObservationStore, PostgresQuota, PostgresRatedRecordStore,
  PostgresUsageCounter } from "@latch/postgres";
import pg from "pg";

const schema = process.env.LATCH_SCHEMA as string;
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
pool.on("error", (error) => console.warn("idle Postgres connection lost", error.message));
const options = { schema };
const latch = createLatch({
  observations: new PostgresObservationStore(pool, options),
  rated: new PostgresRatedRecordStore(pool, options),
  quota: new PostgresQuota(pool, options),
  counter: new PostgresUsageCounter(pool, options),
  pricing: new InMemoryPricingSource([{
    snapshotId: "gpt-4o:2026", model: { billableModel: "gpt-4o" }, currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: { input_tokens: { perMillion: "2.5" }, cached_input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" } },
  }]),
  spoolDir: "./spool",
});
try {
  await latch.ready();
  throw new Error("ready() passed on an unmigrated schema");
} catch (error) {
  if ((error as { code?: string }).code !== "schema_not_migrated") throw error;
}
await migrate(pool, { schema });
await latch.ready();
const result = await latch.record({
  api: "openaiChat",
  usage: { prompt_tokens: 2000, completion_tokens: 500, total_tokens: 2500,
    prompt_tokens_details: { cached_tokens: 1500 } },
  observation: {
    eventId: "chatcmpl-1:0:openai", subject: { tenantId: "acme" },
    model: { billableModel: "gpt-4o-2024-08-06" }, provider: { providerId: "openai" },
    source: { kind: "provider_reported" }, outcome: { kind: "success" },
    timing: { startedAt: "2026-03-01T09:30:00Z", completedAt: "2026-03-01T09:30:01Z" },
  },
});
if (result.status !== "rated") throw new Error(\`expected rated, got \${result.status}\`);
const [row] = await latch.summary({ start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", groupBy: ["model"] });
console.log(JSON.stringify({ total: result.record.total, cost: row?.costByCurrency }));
await latch.close();
await pool.end();
`;

try {
  const tarballs = join(project, "tarballs");
  mkdirSync(tarballs);
  for (const name of ["core", "postgres"])
    run("pnpm", ["pack", "--pack-destination", tarballs], join(root, "packages", name));
  const [core, postgres] = ["latch-core-", "latch-postgres-"].map((prefix) => {
    const file = readdirSync(tarballs).find((f) => f.startsWith(prefix));
    if (file === undefined) throw new Error(`no ${prefix}*.tgz was packed`);
    return `file:./tarballs/${file}`;
  });
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({
      name: "latch-install-check",
      private: true,
      type: "module",
      dependencies: { "@latch/core": core, "@latch/postgres": postgres, pg: "^8.16.3" },
      devDependencies: { typescript: "~5.9.3", "@types/node": "^20.19.0", "@types/pg": "^8.15.6" },
    }),
  );
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        outDir: "dist",
        types: ["node"],
        skipLibCheck: false,
      },
      include: ["main.ts"],
    }),
  );
  writeFileSync(join(project, "main.ts"), program);
  // The store has every package the workspace uses; a fresh machine downloads what is missing.
  run(
    "pnpm",
    [
      "install",
      "--no-frozen-lockfile",
      "--prefer-offline",
      "--ignore-workspace",
      "--config.auto-install-peers=true",
    ],
    project,
  );
  run(join(project, "node_modules", ".bin", "tsc"), ["-p", "."], project);
  const out = run("node", ["dist/main.js"], project, { DATABASE_URL: databaseUrl, LATCH_SCHEMA: schema });
  const answer = JSON.parse(out.trim().split("\n").pop());
  // 500 uncached × 2.5 + 1,500 cached × 1.25 + 500 output × 10, per million
  if (answer.total !== "0.008125" || answer.cost?.USD !== "0.008125")
    throw new Error(`unexpected result ${JSON.stringify(answer)}`);
  console.log(
    `check-install: the packed @latch/core and @latch/postgres install, type check and rate against Postgres (${answer.total} USD)`,
  );
} catch (error) {
  console.error(`check-install: ${error.message}\n${error.stdout ?? ""}${error.stderr ?? ""}`);
  process.exitCode = 1;
} finally {
  try {
    run("psql", [databaseUrl, "-qc", `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], root);
  } catch {}
  rmSync(project, { recursive: true, force: true });
}
