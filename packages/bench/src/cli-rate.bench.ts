/**
 * `latch rate` throughput: spawns the real binary (node + the CLI's source entry) on a
 * generated gateway log and prints lines/s, MB/s and peak RSS, beside the ceiling of the same
 * work in-process (read lines, JSON.parse, normalize, parseObservation, rate, stringify) with
 * no files written. Never part of `pnpm test`: timings on shared machines are noisy.
 *
 * BENCH_CLI_LINES (default 200,000) and BENCH_ROUNDS (default 3) change the size.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  normalize,
  type PriceSnapshot,
  type PriceSnapshotInput,
  parseObservation,
} from "@latch/core";
import { pct, reportRow } from "./report.js";

const PRICE_SNAPSHOTS: PriceSnapshotInput[] = [
  {
    snapshotId: "bench:gpt-4o",
    model: { billableModel: "gpt-4o" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.5" },
      cached_input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    },
  },
  {
    snapshotId: "bench:claude-sonnet-4-5",
    model: { billableModel: "claude-sonnet-4-5" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "3" },
      cached_input_tokens: { perMillion: "0.3" },
      cache_write_tokens: { perMillion: "3.75" },
      output_tokens: { perMillion: "15" },
    },
  },
  {
    snapshotId: "bench:gemini-2.5-pro",
    model: { billableModel: "gemini-2.5-pro" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "1.25" },
      cached_input_tokens: { perMillion: "0.31" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { perMillion: "10" },
    },
  },
];

/** Line `i` of a gateway log: OpenAI, Anthropic and Gemini responses and plain observations, in turn. */
function usageLine(i: number): string {
  const n = (k: number, max: number) => ((i * 2654435761 + k * 40503) >>> 0) % max;
  const completedAt = new Date(Date.parse("2026-03-01T00:00:00Z") + i * 997).toISOString();
  const observation = {
    eventId: `req-${i}:0:gw`,
    subject: { tenantId: `t${i % 5}` },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: completedAt, completedAt },
  };
  switch (i % 4) {
    case 0: {
      const prompt = 100 + n(1, 5_000);
      const completion = 10 + n(2, 800);
      return JSON.stringify({
        api: "openaiChat",
        usage: {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
          prompt_tokens_details: { cached_tokens: n(3, prompt) },
          completion_tokens_details: { reasoning_tokens: n(4, completion) },
        },
        observation: { ...observation, model: { billableModel: "gpt-4o" } },
      });
    }
    case 1:
      return JSON.stringify({
        api: "anthropic",
        usage: {
          input_tokens: 50 + n(1, 4_000),
          output_tokens: 5 + n(2, 900),
          cache_read_input_tokens: n(3, 3_000),
          cache_creation_input_tokens: n(4, 1_500),
        },
        observation: { ...observation, model: { billableModel: "claude-sonnet-4-5" } },
      });
    case 2: {
      const prompt = 100 + n(1, 8_000);
      const candidates = 10 + n(2, 700);
      const thoughts = n(3, 300);
      return JSON.stringify({
        api: "gemini",
        usage: {
          promptTokenCount: prompt,
          cachedContentTokenCount: n(4, prompt),
          candidatesTokenCount: candidates,
          thoughtsTokenCount: thoughts,
          totalTokenCount: prompt + candidates + thoughts,
        },
        observation: { ...observation, model: { billableModel: "gemini-2.5-pro" } },
      });
    }
    default:
      return JSON.stringify({
        ...observation,
        meters: { input_tokens: 10 + n(1, 2_000), output_tokens: n(2, 500) },
        model: { billableModel: "gpt-4o" },
      });
  }
}

async function writeUsageLog(path: string, lines: number): Promise<void> {
  const out = createWriteStream(path);
  let chunk = "";
  for (let i = 0; i < lines; i++) {
    chunk += `${usageLine(i)}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
}

const LINES = Number(process.env.BENCH_CLI_LINES ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "cli", "src", "bin.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

interface RateSummary {
  lines: number;
  rated: number;
  seconds: number;
  linesPerSecond: number;
  peakRssBytes: number;
}

function runRate(args: string[]): Promise<RateSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=dev-source", "--import", TSX, BIN, "rate", ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      err += s;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`latch rate exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as RateSummary);
    });
  });
}

async function inProcess(log: string): Promise<number> {
  const pricing = new InMemoryPricingSource(PRICE_SNAPSHOTS as unknown as PriceSnapshot[]);
  const engine = new DefaultRatingEngine();
  const context = { ratedAt: "2026-03-02T00:00:00Z" };
  const t0 = performance.now();
  let bytes = 0;
  for await (const line of createInterface({
    input: createReadStream(log),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    const json = JSON.parse(line) as { api?: keyof typeof normalize; usage?: unknown; observation?: object };
    const obs =
      json.api !== undefined
        ? parseObservation({ ...json.observation, meters: normalize[json.api](json.usage) })
        : parseObservation(json);
    const snapshot = pricing.require(obs.model, obs.timing.completedAt);
    bytes += JSON.stringify(engine.rate(obs, snapshot, context)).length;
  }
  if (bytes === 0) throw new Error("nothing rated");
  return (LINES / (performance.now() - t0)) * 1_000;
}

const dir = await mkdtemp(join(tmpdir(), "latch-bench-cli-"));
try {
  const log = join(dir, "gateway.jsonl");
  const prices = join(dir, "prices.json");
  await writeFile(prices, JSON.stringify({ schema: "latch.price-snapshots.v1", snapshots: PRICE_SNAPSHOTS }));
  await writeUsageLog(log, LINES);
  const size = (await stat(log)).size;
  console.log(
    `latch rate: ${LINES.toLocaleString("en-US")} lines (${(size / 1e6).toFixed(0)} MB), best of ${ROUNDS}`,
  );

  const fmt = (n: number) => Math.round(n).toLocaleString("en-US").padStart(10);
  const results: Array<{ format: string; best: RateSummary }> = [];
  for (const format of ["jsonl", "csv"] as const) {
    let best: RateSummary | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      const s = await runRate([
        log,
        "--prices",
        prices,
        "-o",
        join(dir, `out.${format}`),
        "--json",
        "--no-progress",
      ]);
      if (s.rated !== LINES) throw new Error(`rated ${s.rated} of ${LINES}`);
      if (best === undefined || s.seconds < best.seconds) best = s;
    }
    const b = best as RateSummary;
    results.push({ format, best: b });
    console.log(
      `${`latch rate --format ${format} (spawned, end to end)`.padEnd(48)} ${fmt(b.linesPerSecond)} lines/s` +
        `  ${(size / 1e6 / b.seconds).toFixed(1).padStart(6)} MB/s in  peak RSS ${(b.peakRssBytes / 1e6).toFixed(0)} MB`,
    );
  }
  let ceiling = 0;
  for (let r = 0; r < ROUNDS; r++) ceiling = Math.max(ceiling, await inProcess(log));
  console.log(`${"in-process ceiling (parse + rate, no output)".padEnd(48)} ${fmt(ceiling)} lines/s`);
  for (const { format, best } of results) {
    reportRow({
      area: "cli",
      metric: `latch rate --format ${format}, ${LINES.toLocaleString("en-US")} lines (peak RSS ${(best.peakRssBytes / 1e6).toFixed(0)} MB)`,
      latch: `${Math.round(best.linesPerSecond).toLocaleString("en-US")} lines/s`,
      against: "same work in-process, no output",
      againstValue: `${Math.round(ceiling).toLocaleString("en-US")} lines/s`,
      ratio: pct(best.linesPerSecond / ceiling),
    });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
