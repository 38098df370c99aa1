/**
 * Latch quickstart — `pnpm start` from the repository root.
 *
 * A day of gateway traffic on the embedded default (no server): a few thousand calls across
 * OpenAI, Anthropic and Gemini payloads and four tenants, one of which runs out of quota.
 * Prices come out of the box (`bundledPriceCatalog()` of @latch/prices: genai-prices' list from
 * npm), so real ids such as gpt-4o-2024-08-06 are priced; the tenant's own fine-tune, which no
 * public list prices, is kept unpriced until its contract price arrives, then re-rated. Prints a
 * per-model summary and the quota denials, and writes the billing export into ./latch-out/.
 *
 * Environment: LATCH_CALLS (default 3000), LATCH_OUT (default ./latch-out), and to swap the
 * backends without touching the application code: LATCH_DATABASE_URL (PostgreSQL as the
 * system of record, schema latch_quickstart, wiped at start) and LATCH_REDIS_URL (Redis for
 * quota and counters, key prefix latch_quickstart), read by @latch/config like any Latch
 * application's (LATCH_STORE=pglite for embedded PostgreSQL; the schema and prefix are always
 * latch_quickstart, since the demo wipes them).
 */
import { relative, resolve } from "node:path";
import { renderReport, simulateDay } from "./simulation.js";

// `pnpm start` runs in this package's folder; write where the user ran it (pnpm's INIT_CWD).
const cwd = process.env.INIT_CWD ?? process.cwd();
const outDir = resolve(cwd, process.env.LATCH_OUT ?? "latch-out");
const result = await simulateDay({
  calls: Number(process.env.LATCH_CALLS ?? 3_000),
  outDir,
  // The LATCH_* variables of @latch/config (LATCH_DATABASE_URL, LATCH_REDIS_URL, …).
  backends: { env: process.env },
});
result.exportDirectory = relative(cwd, outDir) || ".";
for (const line of renderReport(result)) console.log(line);
