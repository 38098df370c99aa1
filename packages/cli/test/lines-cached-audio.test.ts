/**
 * `latch lines` (table): the input column is the call's prompt. Gemini's cached audio is its own
 * meter (`cached_audio_input_tokens`, split out of `cached_input_tokens`), and it must still show
 * there: before the meter it was inside `cached_input_tokens` and so in the column.
 * Payload: core's hand-written Gemini fixture `providers/gemini.cached-audio.json` (an audio
 * file in an explicit cache: prompt 33,000 = 32,000 cached audio + 20 cached text + 980 text).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

const response = JSON.parse(
  readFileSync(
    new URL("../../core/test/fixtures/providers/gemini.cached-audio.json", import.meta.url),
    "utf8",
  ),
) as Record<string, unknown>;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-cached-audio-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("latch lines with Gemini cached audio", () => {
  it("counts cached audio in the input column (the whole prompt: 33,000)", async () => {
    const prices = {
      schema: "latch.price-snapshots.v1",
      snapshots: [
        {
          snapshotId: "test:gemini-2.5-flash:2026-01",
          model: { billableModel: "gemini-2.5-flash" },
          currency: "USD",
          effectiveFrom: "2026-01-01T00:00:00Z",
          prices: {
            input_tokens: { perMillion: "0.3" },
            cached_input_tokens: { perMillion: "0.03" },
            cached_audio_input_tokens: { perMillion: "0.1" },
            output_tokens: { perMillion: "2.5" },
          },
        },
      ],
    };
    await writeFile(join(dir, "prices.json"), JSON.stringify(prices));
    const line = {
      api: "gemini",
      response,
      observation: {
        eventId: "req-audio-1",
        subject: { tenantId: "acme" },
        model: { billableModel: "gemini-2.5-flash" },
        provider: { providerId: "google" },
        source: { kind: "provider_reported" },
        outcome: { kind: "success" },
        timing: { startedAt: "2026-03-01T00:00:00Z", completedAt: "2026-03-01T00:00:01Z" },
      },
    };
    await writeFile(join(dir, "log.jsonl"), `${JSON.stringify(line)}\n`);
    const rated = join(dir, "rated.jsonl");
    const run = await runCli([
      "rate",
      join(dir, "log.jsonl"),
      "--prices",
      join(dir, "prices.json"),
      "-o",
      rated,
    ]);
    expect(run.code).toBe(0);

    const table = await runCli(["lines", "--records", rated]);
    expect(table.code).toBe(0);
    const [header, row] = table.stdout.split("\n");
    expect(header).toMatch(/\binput\s+output\b/);
    // 980 text + 20 cached text + 32,000 cached audio = 33,000 prompt tokens; 9 out.
    // 980 × 0.3 + 20 × 0.03 + 32,000 × 0.1 + 9 × 2.5 = 294 + 0.6 + 3200 + 22.5 = 3517.1 / 1e6
    expect(row, table.stdout).toMatch(/\s33,000\s+9\s+success\s+0\.0035171 USD$/);
  });
});
