/**
 * Deterministic gateway usage logs for the CLI tests and the `rate` benchmark: raw provider
 * responses (`{ api, usage, observation }`) from OpenAI, Anthropic and Gemini, plus whole
 * observations, across tenants and models, with a price sheet for them.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import {
  createLatch,
  InMemoryPricingSource,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type PriceSnapshotInput,
  sumDecimals,
} from "@latch/core";

export const PRICE_SNAPSHOTS: PriceSnapshotInput[] = [
  {
    snapshotId: "test:gpt-4o:2026-01",
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
    snapshotId: "test:claude-sonnet-4-5:2026-01",
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
    snapshotId: "test:gemini-2.5-pro:2026-01",
    model: { billableModel: "gemini-2.5-pro" },
    currency: "EUR",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {},
    tiers: [
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 200_000,
            prices: {
              input_tokens: { perMillion: "1.25" },
              cached_input_tokens: { perMillion: "0.31" },
              output_tokens: { perMillion: "10" },
              reasoning_tokens: { perMillion: "10" },
            },
          },
          {
            upTo: null,
            prices: {
              input_tokens: { perMillion: "2.5" },
              cached_input_tokens: { perMillion: "0.625" },
              output_tokens: { perMillion: "15" },
              reasoning_tokens: { perMillion: "15" },
            },
          },
        ],
      },
    ],
  },
];

export const PRICE_FILE = { schema: "latch.price-snapshots.v1", snapshots: PRICE_SNAPSHOTS };

const TENANTS = ["acme", "globex", "initech", "umbrella"];
const DAY0 = Date.parse("2026-03-01T00:00:00Z");

/** A small deterministic PRNG (mulberry32), so every run writes the same log. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Line `i` (0-based) of the log: a JSON object, without the newline. */
export function usageLine(i: number): string {
  const r = rng(i + 1);
  const int = (max: number) => Math.floor(r() * max);
  const tenant = TENANTS[Math.floor(i / 3) % TENANTS.length] as string;
  const kind = i % 4;
  const completed = DAY0 + i * 997;
  const timing = {
    startedAt: new Date(completed - 800).toISOString(),
    completedAt: new Date(completed).toISOString(),
  };
  const base = {
    eventId: `req-${i}:0:${["openai", "anthropic", "google", "openai"][kind]}`,
    subject: { tenantId: tenant, projectId: `p${i % 7}` },
    source: { kind: "provider_reported" },
    outcome: i % 50 === 7 ? { kind: "error", code: "upstream_500" } : { kind: "success" },
    timing,
  };
  if (kind === 0) {
    const prompt = 100 + int(5_000);
    const cached = int(prompt);
    const completion = 10 + int(800);
    const reasoning = int(completion);
    return JSON.stringify({
      api: "openaiChat",
      usage: {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: { cached_tokens: cached },
        completion_tokens_details: { reasoning_tokens: reasoning },
      },
      observation: { ...base, model: { billableModel: "gpt-4o" }, provider: { providerId: "openai" } },
    });
  }
  if (kind === 1) {
    return JSON.stringify({
      api: "anthropic",
      usage: {
        input_tokens: 50 + int(4_000),
        output_tokens: 5 + int(900),
        cache_read_input_tokens: int(3_000),
        cache_creation_input_tokens: int(2) === 0 ? 0 : int(1_500),
      },
      observation: {
        ...base,
        model: { billableModel: "claude-sonnet-4-5" },
        provider: { providerId: "anthropic" },
      },
    });
  }
  if (kind === 2) {
    // Now and then above the 200k-token tier boundary.
    const prompt = i % 40 === 2 ? 200_001 + int(50_000) : 100 + int(8_000);
    const cached = int(prompt);
    const candidates = 10 + int(700);
    const thoughts = int(300);
    return JSON.stringify({
      api: "gemini",
      usage: {
        promptTokenCount: prompt,
        cachedContentTokenCount: cached,
        candidatesTokenCount: candidates,
        thoughtsTokenCount: thoughts,
        totalTokenCount: prompt + candidates + thoughts,
      },
      observation: {
        ...base,
        model: { billableModel: "gemini-2.5-pro" },
        provider: { providerId: "google" },
      },
    });
  }
  return JSON.stringify({
    ...base,
    meters: { input_tokens: 10 + int(2_000), output_tokens: int(500) },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
  });
}

/** Writes an `n`-line log; `replace` swaps chosen lines (0-based) for other text (malformed lines). */
export async function writeUsageLog(
  path: string,
  n: number,
  replace: Map<number, string> = new Map(),
): Promise<void> {
  const out = createWriteStream(path);
  let chunk = "";
  for (let i = 0; i < n; i++) {
    chunk += `${replace.get(i) ?? usageLine(i)}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
}

/**
 * The library's own figures for a log: every line through `createLatch().record()` on the
 * in-memory stores, then the exact sum of the rated totals per currency.
 */
export async function libraryTotals(
  path: string,
): Promise<{ rated: number; unpriced: number; totals: Record<string, string> }> {
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource(PRICE_SNAPSHOTS as never),
    onWarning: () => undefined,
  });
  const amounts = new Map<string, string[]>();
  let rated = 0;
  let unpriced = 0;
  const reader = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of reader) {
    let input: unknown;
    try {
      input = JSON.parse(line);
    } catch {
      continue;
    }
    let result: Awaited<ReturnType<typeof latch.record>>;
    try {
      result = await latch.record(input as never);
    } catch {
      continue; // invalid input
    }
    if (result.status === "rated") {
      rated++;
      const list = amounts.get(result.record.currency) ?? [];
      list.push(result.record.total);
      amounts.set(result.record.currency, list);
    } else unpriced++;
  }
  const totals = Object.fromEntries(
    [...amounts.keys()].sort().map((c) => [c, sumDecimals(amounts.get(c) ?? [])]),
  );
  return { rated, unpriced, totals };
}
