import { rm } from "node:fs/promises";
import { join } from "node:path";
import {
  createLatch,
  FileExporter,
  formatMinorUnits,
  type Latch,
  type PriceSnapshot,
  type ProviderUsageInput,
  type SummaryRow,
  sumDecimals,
  toMinorUnits,
  type UsageApi,
  UsageEventId,
} from "@latch/core";
import { bundledPriceCatalog } from "@latch/prices";
import { type BackendOptions, openBackends } from "./backends.js";

/**
 * Hand-written price sheets (per million tokens, decimal strings), kept for the gateway
 * example. The quickstart itself prices out of the box: `bundledPriceCatalog()` of
 * `@latch/prices` (genai-prices' price list, from npm).
 */
export const PRICE_SHEETS: PriceSnapshot[] = [
  {
    snapshotId: "openai:gpt-4o:2026-01",
    model: { billableModel: "gpt-4o", vendor: "openai" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.50" },
      cached_input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    },
  },
  {
    snapshotId: "anthropic:claude-sonnet-4-5:2026-01",
    model: { billableModel: "claude-sonnet-4-5", vendor: "anthropic" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "3" },
      cached_input_tokens: { perMillion: "0.30" },
      cache_write_tokens: { perMillion: "3.75" },
      cache_write_1h_tokens: { perMillion: "6" },
      output_tokens: { perMillion: "15" },
    },
  },
  {
    snapshotId: "google:gemini-2.5-pro:2026-01",
    model: { billableModel: "gemini-2.5-pro", vendor: "google" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    prices: { cached_input_tokens: { perMillion: "0.31" }, reasoning_tokens: { as: "output_tokens" } },
    tiers: [
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 200_000,
            prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "10" } },
          },
          {
            upTo: null,
            prices: { input_tokens: { perMillion: "2.50" }, output_tokens: { perMillion: "15" } },
          },
        ],
      },
    ],
  },
];

/**
 * The model no public price list has: the tenant's own fine-tune, priced by its contract. Its
 * calls are kept unpriced until this snapshot arrives at the end of the day, then re-rated.
 */
export const FINE_TUNE = "ft:gpt-4.1-mini:acme::support";
export const LATE_PRICE: PriceSnapshot = {
  snapshotId: "contract:ft-support-v3:2026-01",
  model: { billableModel: FINE_TUNE, vendor: "openai" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: {
    input_tokens: { perMillion: "0.80" },
    cached_input_tokens: { perMillion: "0.20" },
    output_tokens: { perMillion: "3.20" },
    reasoning_tokens: { as: "output_tokens" },
  },
};

/** Daily token quotas per tenant; initech's is small (2,000 tokens per simulated call) and runs out. */
export function quotasFor(calls: number): Record<string, number> {
  return { acme: 400_000_000, globex: 400_000_000, initech: calls * 2_000, umbrella: 400_000_000 };
}

const DAY = "2026-03-14";

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

interface Call {
  tenant: string;
  model: string;
  api: UsageApi;
  provider: string;
  responseId: string;
  usage: unknown;
  promptTokens: number;
  maxOutput: number;
  startedAt: string;
  completedAt: string;
  outcome: "success" | "error";
}

/** What each provider's API sends back, in its own shape: the normalizers do the rest. */
function makeCall(i: number, random: () => number): Call {
  const int = (max: number) => Math.floor(random() * max);
  const tenants = ["acme", "globex", "initech", "umbrella"];
  const tenant = tenants[int(tenants.length)] as string;
  const second = Math.floor((i * 86_400) / 3_000);
  const started = new Date(Date.parse(`${DAY}T00:00:00Z`) + second * 1000);
  const completed = new Date(started.getTime() + 300 + int(20_000));
  const prompt = random() < 0.03 ? 200_001 + int(100_000) : 200 + int(30_000);
  const cached = random() < 0.5 ? int(prompt) : 0;
  const output = 20 + int(2_000);
  const reasoning = random() < 0.3 ? int(3_000) : 0;
  const kind = i % 4;
  const base = {
    tenant,
    promptTokens: prompt,
    maxOutput: 4_000,
    startedAt: started.toISOString(),
    completedAt: completed.toISOString(),
    outcome: random() < 0.02 ? ("error" as const) : ("success" as const),
  };
  if (kind === 0) {
    return {
      ...base,
      model: "gpt-4o-2024-08-06", // as a real OpenAI response names it
      api: "openaiChat",
      provider: "openai",
      responseId: `chatcmpl-${i}`,
      usage: {
        prompt_tokens: prompt,
        completion_tokens: output + reasoning,
        total_tokens: prompt + output + reasoning,
        prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0 },
      },
    };
  }
  if (kind === 1) {
    const write = random() < 0.3 ? int(prompt - cached) : 0;
    const oneHour = random() < 0.5 ? Math.floor(write / 2) : 0;
    return {
      ...base,
      model: "claude-sonnet-4-5-20250929",
      api: "anthropic",
      provider: "anthropic",
      responseId: `msg_${i}`,
      usage: {
        input_tokens: prompt - cached - write,
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: write,
        cache_creation: { ephemeral_5m_input_tokens: write - oneHour, ephemeral_1h_input_tokens: oneHour },
        output_tokens: output,
      },
    };
  }
  if (kind === 2) {
    return {
      ...base,
      model: "gemini-2.5-pro",
      api: "gemini",
      provider: "google",
      responseId: `gemini-${i}`,
      usage: {
        promptTokenCount: prompt,
        cachedContentTokenCount: cached,
        candidatesTokenCount: output,
        thoughtsTokenCount: reasoning,
        totalTokenCount: prompt + output + reasoning,
      },
    };
  }
  return {
    ...base,
    model: FINE_TUNE,
    api: "openaiResponses",
    provider: "openai",
    responseId: `resp_${i}`,
    usage: {
      input_tokens: prompt,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: output + reasoning,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: prompt + output + reasoning,
    },
  };
}

export interface SimulationResult {
  /** Where the state lived. */
  backend: string;
  calls: number;
  recorded: number;
  denials: Array<{ tenant: string; at: string; message: string }>;
  unpricedBeforeReRate: number;
  reRated: { rated: number; stillUnpriced: number };
  summary: SummaryRow[];
  exportKeys: string[];
  exportDirectory: string;
  /** Exact USD total of the day, from the summary. */
  totalUsd: string;
}

/**
 * A day of gateway traffic (on the embedded default unless `backends` says otherwise): reserve quota, call (simulated), record
 * the provider's usage payload, settle; then price the late model, re-rate, report, export.
 */
export async function simulateDay(options: {
  calls?: number;
  outDir: string;
  seed?: number;
  backends?: BackendOptions;
}): Promise<SimulationResult> {
  const calls = options.calls ?? 3_000;
  const random = rng(options.seed ?? 2026);
  // Prices out of the box: genai-prices' list (npm), converted exactly; real ids such as
  // gpt-4o-2024-08-06 resolve by Latch's model matching.
  const pricing = await bundledPriceCatalog();
  const backends = await openBackends(options.backends);
  const { quota } = backends;
  for (const [tenant, limit] of Object.entries(quotasFor(calls))) await quota.setLimit(tenant, limit);
  await rm(join(options.outDir, "latch.billing-export.v1"), { recursive: true, force: true });
  let now = new Date(`${DAY}T00:00:00Z`);
  const latch: Latch = createLatch({
    observations: backends.observations,
    rated: backends.rated,
    pricing,
    quota,
    counter: backends.counter,
    exporter: new FileExporter({ directory: options.outDir, formats: ["jsonl.gz", "csv"] }),
    clock: () => now,
    spoolPath: join(options.outDir, ".spool.jsonl"),
  });
  await latch.ready();

  const denials: SimulationResult["denials"] = [];
  let recorded = 0;
  let unpriced = 0;
  for (let i = 0; i < calls; i++) {
    const call = makeCall(i, random);
    now = new Date(call.completedAt);
    // The id of this model call is ours, made before the call (a real gateway uses randomUUID();
    // the simulation numbers its calls so that its report is the same on every run). Never the
    // provider's response id: a provider or a caching proxy may answer two calls with one id.
    const callId = `sim-call-${i}`;
    const hold = await latch.reserve({
      account: call.tenant,
      amount: call.promptTokens + call.maxOutput,
      holdId: `${callId}:hold`,
    });
    if (!hold.granted) {
      denials.push({ tenant: call.tenant, at: call.startedAt, message: hold.message });
      continue;
    }
    // A call's API is picked per simulated call, so its usage is typed `unknown` here: assert the
    // input (with a literal `api`, `record()` type-checks the usage; it validates it at run time).
    const result = await latch.record({
      api: call.api,
      usage: call.usage,
      observation: {
        eventId: UsageEventId.fromAttempt(callId, 0, call.provider),
        subject: { tenantId: call.tenant, projectId: `${call.tenant}-assistant`, feature: "chat" },
        model: { billableModel: call.model },
        provider: { providerId: call.provider },
        source: { kind: "provider_reported" },
        outcome: call.outcome === "success" ? { kind: "success" } : { kind: "error", code: "upstream_5xx" },
        timing: { startedAt: call.startedAt, completedAt: call.completedAt },
        // The provider's id, kept to match its invoice and logs.
        attributes: { provider_response_id: call.responseId },
      },
    } as ProviderUsageInput);
    recorded++;
    if (result.status === "unpriced") unpriced++;
    await latch.settle(hold, result);
  }

  // The fine-tune's contract price arrives; everything recorded unpriced is rated now.
  now = new Date(`${DAY}T23:59:59Z`);
  pricing.add(LATE_PRICE);
  const reRated = await latch.rerateUnpriced();

  const summary = await latch.summary({
    start: `${DAY}T00:00:00Z`,
    end: "2026-03-16T00:00:00Z",
    groupBy: ["model"],
  });
  const exported = await latch.exportPending();
  await latch.close();
  await backends.close();
  return {
    backend: backends.description,
    calls,
    recorded,
    denials,
    unpricedBeforeReRate: unpriced,
    reRated,
    summary,
    exportKeys: exported.keys,
    exportDirectory: options.outDir,
    totalUsd: sumDecimals(summary.map((row) => row.costByCurrency.USD ?? "0")),
  };
}

/** The report `pnpm start` prints. */
export function renderReport(result: SimulationResult): string[] {
  const lines: string[] = [];
  lines.push(`Simulated ${result.calls.toLocaleString("en-US")} gateway calls on ${DAY} (${result.backend})`);
  lines.push("");
  const header = [
    "model",
    "requests",
    "failures",
    "input",
    "cache read",
    "cache write",
    "output",
    "cost (USD, exact)",
  ];
  const rows = result.summary.map((r) => [
    r.group.model ?? "",
    r.requests.toLocaleString("en-US"),
    r.failures.toLocaleString("en-US"),
    r.inputTokens.toLocaleString("en-US"),
    r.cacheReadTokens.toLocaleString("en-US"),
    r.cacheWriteTokens.toLocaleString("en-US"),
    r.outputTokens.toLocaleString("en-US"),
    r.costByCurrency.USD ?? "0",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const fmt = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number)))
      .join("  ");
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  lines.push("");
  lines.push(
    `total ${result.totalUsd} USD exact = ${formatMinorUnits(toMinorUnits(result.totalUsd, "USD"), "USD")} USD invoiced (rounded once, half-even)`,
  );
  lines.push(
    `unpriced at record time: ${result.unpricedBeforeReRate} (${FINE_TUNE} had no price); re-rated after its price arrived: ${result.reRated.rated}, still unpriced: ${result.reRated.stillUnpriced}`,
  );
  lines.push("");
  lines.push(`quota denials: ${result.denials.length}`);
  const byTenant = new Map<string, number>();
  for (const d of result.denials) byTenant.set(d.tenant, (byTenant.get(d.tenant) ?? 0) + 1);
  for (const [tenant, n] of byTenant) {
    const first = result.denials.find((d) => d.tenant === tenant);
    lines.push(`  ${tenant}: ${n} calls denied from ${first?.at} (${first?.message})`);
  }
  lines.push("");
  lines.push(`billing export (${result.exportKeys.length} objects) in ${result.exportDirectory}/:`);
  for (const key of result.exportKeys) lines.push(`  ${key}`);
  return lines;
}
