import { PGlite } from "@electric-sql/pglite";
import {
  type LinesQuery,
  MemoryRatedRecordStore,
  type RatedUsageRecord,
  type SummaryQuery,
} from "@latch/core";
import type { RatedRecordStore } from "@latch/core/adapter";
import { makeCorrection, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPglite, migrate, PostgresRatedRecordStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

/**
 * The same reports from the memory store (core's reference), PGlite and a Postgres server on
 * one generated month: every summary grouping and filter below, and every page of `lines`,
 * must be equal (values, order, cursors). The month is deterministic (a seeded generator):
 * five tenants in two currencies, three models, optional subject fields, failures, versions
 * written late or in the batch of the version they correct (up to v3), and events on both
 * edges of the month.
 */

/** mulberry32: a small deterministic generator. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const MONTH = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };
const TENANTS = ["acme", "globex", "initech", "umbrella", "zeta"];
const EUR_TENANTS = new Set(["globex", "zeta"]);
const MODELS = ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"];
const PROVIDERS: Record<string, string> = {
  "gpt-4o": "openai",
  "claude-sonnet-4-5": "anthropic",
  "gemini-2.5-pro": "google",
};

/** Batches to write in order: the month's versions (every correction after what it corrects). */
function generateMonth(seed: number, events: number): RatedUsageRecord[][] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const meters = () => ({
    input_tokens: 1 + Math.floor(next() * 50_000),
    output_tokens: Math.floor(next() * 4_000),
    ...(next() < 0.3 ? { cached_input_tokens: Math.floor(next() * 1_000) } : {}),
    ...(next() < 0.1 ? { cache_write_tokens: Math.floor(next() * 500) } : {}),
  });
  const monthStart = Date.parse(MONTH.start);
  const monthMs = Date.parse(MONTH.end) - monthStart;
  const batches: RatedUsageRecord[][] = [];
  let batch: RatedUsageRecord[] = [];
  const late: RatedUsageRecord[] = [];
  for (let i = 0; i < events; i++) {
    // Edges: the last millisecond before the month, its first, its last, the next month's first.
    const edge = [monthStart - 1, monthStart, monthStart + monthMs - 1, monthStart + monthMs][i];
    const ms = edge ?? monthStart + Math.floor(next() * monthMs);
    const iso = new Date(ms).toISOString();
    // Whole seconds are written without milliseconds now and then (same instant, other text).
    const completedAt = ms % 1000 === 0 && next() < 0.5 ? iso.replace(".000Z", "Z") : iso;
    const tenantId = pick(TENANTS);
    const model = pick(MODELS);
    const v1 = makeRatedRecord({
      currency: EUR_TENANTS.has(tenantId) ? "EUR" : "USD",
      observation: {
        eventId: `parity-${seed}-${i}`,
        subject: {
          tenantId,
          ...(next() < 0.6 ? { orgId: `org-${Math.floor(next() * 3)}` } : {}),
          ...(next() < 0.8 ? { projectId: `p-${Math.floor(next() * 4)}` } : {}),
          ...(next() < 0.3 ? { apiKeyId: `key-${Math.floor(next() * 5)}` } : {}),
          ...(next() < 0.2 ? { endUserId: `user-${Math.floor(next() * 9)}` } : {}),
          ...(next() < 0.5 ? { feature: pick(["chat", "search", "summarize"]) } : {}),
        },
        meters: meters(),
        model: { billableModel: model },
        provider: { providerId: PROVIDERS[model] as string },
        outcome: next() < 0.08 ? { kind: "error", code: "rate_limited" } : { kind: "success" },
        timing: { startedAt: completedAt, completedAt },
      },
    });
    batch.push(v1);
    const roll = next();
    if (roll < 0.05) {
      // Corrected in the same batch, twice for some.
      const v2 = makeCorrection(v1, meters());
      batch.push(v2);
      if (roll < 0.02) batch.push(makeCorrection(v2, meters()));
    } else if (roll < 0.15) {
      late.push(makeCorrection(v1, meters()));
    }
    if (batch.length >= 97) {
      batches.push(batch);
      batch = [];
    }
  }
  batches.push(batch);
  // Late corrections, then a correction of some of those.
  batches.push(late);
  batches.push(late.filter((_, i) => i % 4 === 0).map((v2) => makeCorrection(v2, meters())));
  return batches;
}

const SUMMARIES: SummaryQuery[] = [
  { ...MONTH, groupBy: [] },
  { ...MONTH, groupBy: ["tenantId"] },
  { ...MONTH, groupBy: ["day"] },
  { ...MONTH, groupBy: ["tenantId", "day"] },
  { ...MONTH, groupBy: ["model", "day"] },
  { ...MONTH, groupBy: ["provider", "model"] },
  { ...MONTH, groupBy: ["orgId", "projectId", "apiKeyId"] },
  { ...MONTH, groupBy: ["endUserId", "feature"] },
  { ...MONTH, groupBy: ["model"], filters: { tenantId: "globex" } },
  { ...MONTH, groupBy: ["day"], filters: { tenantId: "acme", model: "gpt-4o" } },
  { start: "2026-03-10T00:00:00Z", end: "2026-03-11T00:00:00Z", groupBy: ["tenantId", "model"] },
  { start: "2026-02-01T00:00:00Z", end: "2026-05-01T00:00:00Z", groupBy: ["day"] },
];

const LINES: Array<Omit<LinesQuery, "cursor">> = [
  { ...MONTH, limit: 37 },
  { ...MONTH, limit: 10, filters: { tenantId: "zeta" } },
  { start: "2026-03-15T00:00:00Z", end: "2026-03-17T00:00:00Z", limit: 5, filters: { feature: "chat" } },
];

/** Every page of `query` through its cursors: each page's ratedRecordIds and its next cursor. */
async function allPages(store: RatedRecordStore, query: Omit<LinesQuery, "cursor">) {
  const pages: Array<{ ids: string[]; next: string | undefined }> = [];
  let cursor: string | undefined;
  do {
    const page = await store.lines({ ...query, ...(cursor === undefined ? {} : { cursor }) });
    pages.push({ ids: page.items.map((r) => r.ratedRecordId), next: page.next });
    cursor = page.next;
  } while (cursor !== undefined && pages.length < 1_000);
  return pages;
}

describe("reports: memory, PGlite and Postgres agree on a generated month", () => {
  const batches = generateMonth(19, 700);
  const versions = batches.flat();
  const schema = freshSchema("parity");
  let pool: pg.Pool;
  let pglite: PGlite;
  const stores: Array<{ name: string; store: RatedRecordStore }> = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    await migrate(pool, { schema });
    pglite = new PGlite();
    const lite = fromPglite(pglite);
    await migrate(lite, { schema: "latch" });
    stores.push(
      { name: "memory", store: new MemoryRatedRecordStore() },
      { name: "pglite", store: new PostgresRatedRecordStore(lite, { schema: "latch" }) },
      { name: "postgres", store: new PostgresRatedRecordStore(pool, { schema }) },
    );
    for (const { store } of stores) {
      for (const batch of batches) await store.putMany(batch);
    }
  }, 120_000);

  afterAll(async () => {
    await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool?.end();
    await pglite?.close();
  });

  it("generates a month with corrections (some to v3) in two currencies", () => {
    expect(versions.filter((r) => r.version === 2).length).toBeGreaterThan(50);
    expect(versions.filter((r) => r.version === 3).length).toBeGreaterThan(10);
    expect(new Set(versions.map((r) => r.currency))).toEqual(new Set(["USD", "EUR"]));
  });

  it("summaries are equal for every grouping and filter", async () => {
    const [memory, ...sql] = stores;
    for (const query of SUMMARIES) {
      const expected = await memory?.store.summary(query);
      expect(expected?.length).toBeGreaterThan(0);
      for (const { name, store } of sql) {
        expect({ name, query, rows: await store.summary(query) }).toEqual({ name, query, rows: expected });
      }
    }
  });

  it("every page of lines is equal, cursors included", async () => {
    const [memory, ...sql] = stores;
    for (const query of LINES) {
      const expected = await allPages(memory?.store as RatedRecordStore, query);
      expect(expected.length).toBeGreaterThan(1);
      for (const { name, store } of sql) {
        expect({ name, query, pages: await allPages(store, query) }).toEqual({
          name,
          query,
          pages: expected,
        });
      }
    }
  });

  it("a whole-month summary counts each event once, at its latest version", async () => {
    const latest = new Map<string, RatedUsageRecord>();
    for (const r of versions) {
      const seen = latest.get(r.eventId);
      if (seen === undefined || seen.version < r.version) latest.set(r.eventId, r);
    }
    const inMonth = [...latest.values()].filter((r) => {
      const ms = Date.parse(r.observation.timing.completedAt);
      return ms >= Date.parse(MONTH.start) && ms < Date.parse(MONTH.end);
    });
    for (const { store } of stores) {
      const [row] = await store.summary({ ...MONTH, groupBy: [] });
      expect(row?.requests).toBe(inMonth.length);
    }
  });
});
