/**
 * Latch quickstart — `pnpm start` from the repository root.
 *
 * A day of gateway traffic on the embedded default (no server): a few thousand calls across
 * OpenAI, Anthropic and Gemini payloads and four tenants, one of which runs out of quota, and
 * one model whose price arrives late and is re-rated. Prints a per-model summary and the quota
 * denials, and writes the billing export into ./latch-out/.
 *
 * Environment: LATCH_CALLS (default 3000), LATCH_OUT (default ./latch-out). Postgres, Redis
 * and S3 backends will be selectable here once their adapters exist.
 */
import { renderReport, simulateDay } from "./simulation.js";

const result = await simulateDay({
  calls: Number(process.env.LATCH_CALLS ?? 3_000),
  outDir: process.env.LATCH_OUT ?? "latch-out",
});
for (const line of renderReport(result)) console.log(line);
