import { describe, expect, it } from "vitest";
import { LatchValidationError, OverflowError } from "../../src/errors/index.js";
import { summarize } from "../../src/reports/index.js";
import type { SummaryQuery } from "../../src/reports/query.js";
import type { BillingSubject } from "../../src/schemas/identity.js";
import type { MeterSet } from "../../src/schemas/meters.js";
import type { UsageOutcome } from "../../src/schemas/observation.js";
import { type RatedUsageRecord, RatedUsageRecordSchema } from "../../src/schemas/rating.js";
import { observation, thrown } from "../support.js";

interface Spec {
  eventId: string;
  version?: number;
  completedAt: string;
  meters?: MeterSet;
  model?: string;
  provider?: string | null;
  subject?: BillingSubject;
  outcome?: UsageOutcome;
  currency?: string;
  total?: string;
}

/** A valid rated record (checked against the schema) built from the fields a report reads. */
function rec(s: Spec): RatedUsageRecord {
  const version = s.version ?? 1;
  const obs = observation(s.meters ?? {}, {
    eventId: s.eventId,
    subject: s.subject ?? { tenantId: "acme" },
    model: { billableModel: s.model ?? "gpt-4o" },
    outcome: s.outcome ?? { kind: "success" },
    timing: { startedAt: s.completedAt, completedAt: s.completedAt },
  });
  if (s.provider === null) delete obs.provider;
  else obs.provider = { providerId: s.provider ?? "openai" };
  return RatedUsageRecordSchema.parse({
    ratedRecordId: `${s.eventId}:v${version}`,
    eventId: s.eventId,
    version,
    ...(version > 1 ? { supersedes: `${s.eventId}:v${version - 1}` } : {}),
    snapshotId: "snap-1",
    currency: s.currency ?? "USD",
    lineItems: [],
    total: s.total ?? "0",
    ratedAt: "2026-03-05T00:00:00Z",
    observation: obs,
  });
}

const START = "2026-03-01T00:00:00Z";
const END = "2026-03-03T00:00:00Z";
const q = (groupBy: SummaryQuery["groupBy"], filters?: SummaryQuery["filters"]): SummaryQuery => ({
  start: START,
  end: END,
  groupBy,
  ...(filters ? { filters } : {}),
});

// The golden data set. Hand-computed per record (input / cacheRead / cacheWrite / output / total):
//   A v2  110 /   50 /    0 /  50 (20 out + 30 reasoning)     /  210   USD 0.11   success
//   B     205 (200 + 5 audio) / 0 / 0 / 13 (10 + 3 audio out)  /  218   USD 0.2    error
//   C    1000 / 2000 / 1000 (300 5m + 700 1h) / 400           / 4400   EUR 1.25   success
//   D      10 /    0 /    0 /   5                              /   15   USD 0.0000001 timeout
//   E       1 /    0 /    0 /   0 (4 images, custom ignored)   /    1   USD 0      unknown
const A1 = rec({
  eventId: "a:0:openai",
  completedAt: "2026-03-01T23:59:59.999Z",
  meters: { input_tokens: 100, cached_input_tokens: 50, output_tokens: 20, reasoning_tokens: 30 },
  subject: { tenantId: "acme", projectId: "p1" },
  total: "0.1",
});
const A2 = rec({
  eventId: "a:0:openai",
  version: 2,
  completedAt: "2026-03-01T23:59:59.999Z",
  meters: { input_tokens: 110, cached_input_tokens: 50, output_tokens: 20, reasoning_tokens: 30 },
  subject: { tenantId: "acme", projectId: "p1" },
  total: "0.11",
});
const B = rec({
  eventId: "b:0:openai",
  completedAt: "2026-03-02T00:00:00Z",
  meters: { input_tokens: 200, audio_input_tokens: 5, output_tokens: 10, audio_output_tokens: 3 },
  subject: { tenantId: "acme", projectId: "p2" },
  outcome: { kind: "error", code: "rate_limited" },
  total: "0.2",
});
const C = rec({
  eventId: "c:0:anthropic",
  completedAt: "2026-03-01T10:00:00Z",
  model: "claude",
  provider: "anthropic",
  meters: {
    input_tokens: 1000,
    cached_input_tokens: 2000,
    cache_write_tokens: 300,
    cache_write_1h_tokens: 700,
    output_tokens: 400,
  },
  subject: { tenantId: "acme", projectId: "p1" },
  currency: "EUR",
  total: "1.25",
});
const D = rec({
  eventId: "d:0:anthropic",
  completedAt: "2026-03-01T11:00:00Z",
  model: "claude",
  provider: "anthropic",
  meters: { input_tokens: 10, output_tokens: 5 },
  subject: { tenantId: "beta" },
  outcome: { kind: "timeout" },
  total: "0.0000001",
});
const E = rec({
  eventId: "e:0:openai",
  completedAt: "2026-03-02T05:00:00Z",
  provider: null,
  meters: { input_tokens: 1, image_count: 4, "custom:foo": 99 },
  outcome: { kind: "unknown" },
  total: "0",
});
// A2 before A1 on purpose: the highest version wins whatever the order.
const GOLDEN = [A2, B, C, A1, D, E];

describe("summarize: golden sums", () => {
  it("groupBy [] gives one row for everything, with exact tokens, counts and per-currency cost", () => {
    expect(summarize(GOLDEN, q([]))).toEqual([
      {
        group: {},
        inputTokens: 1326,
        cacheReadTokens: 2050,
        cacheWriteTokens: 1000,
        outputTokens: 468,
        totalTokens: 4844,
        requests: 5,
        successes: 2,
        failures: 3,
        costByCurrency: { EUR: "1.25", USD: "0.3100001" },
      },
    ]);
  });

  it("groupBy model+day splits across midnight UTC and never merges currencies", () => {
    expect(summarize(GOLDEN, q(["model", "day"]))).toEqual([
      {
        group: { model: "claude", day: "2026-03-01" },
        inputTokens: 1010,
        cacheReadTokens: 2000,
        cacheWriteTokens: 1000,
        outputTokens: 405,
        totalTokens: 4415,
        requests: 2,
        successes: 1,
        failures: 1,
        costByCurrency: { EUR: "1.25", USD: "0.0000001" },
      },
      {
        group: { model: "gpt-4o", day: "2026-03-01" },
        inputTokens: 110,
        cacheReadTokens: 50,
        cacheWriteTokens: 0,
        outputTokens: 50,
        totalTokens: 210,
        requests: 1,
        successes: 1,
        failures: 0,
        costByCurrency: { USD: "0.11" },
      },
      {
        group: { model: "gpt-4o", day: "2026-03-02" },
        inputTokens: 206,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        outputTokens: 13,
        totalTokens: 219,
        requests: 2,
        successes: 0,
        failures: 2,
        costByCurrency: { USD: "0.2" },
      },
    ]);
  });

  it("a missing provider groups under the empty string, which sorts first", () => {
    const rows = summarize(GOLDEN, q(["provider"]));
    expect(rows.map((r) => [r.group, r.requests, r.totalTokens, r.costByCurrency])).toEqual([
      [{ provider: "" }, 1, 1, { USD: "0" }],
      [{ provider: "anthropic" }, 2, 4415, { EUR: "1.25", USD: "0.0000001" }],
      [{ provider: "openai" }, 2, 428, { USD: "0.31" }],
    ]);
    const openai = rows[2];
    expect(openai).toMatchObject({ inputTokens: 315, cacheReadTokens: 50, outputTokens: 63, failures: 1 });
  });

  it("group holds exactly the groupBy keys, in groupBy order; rows sort by the values in that order", () => {
    const rows = summarize(GOLDEN, q(["day", "model"]));
    expect(rows.map((r) => Object.keys(r.group))).toEqual([
      ["day", "model"],
      ["day", "model"],
      ["day", "model"],
    ]);
    expect(rows.map((r) => [r.group.day, r.group.model])).toEqual([
      ["2026-03-01", "claude"],
      ["2026-03-01", "gpt-4o"],
      ["2026-03-02", "gpt-4o"],
    ]);
  });

  it("subject fields group and missing ones group under the empty string", () => {
    const rows = summarize(GOLDEN, q(["tenantId", "projectId"]));
    expect(rows.map((r) => [r.group.tenantId, r.group.projectId, r.requests])).toEqual([
      ["acme", "", 1], // E
      ["acme", "p1", 2], // A, C
      ["acme", "p2", 1], // B
      ["beta", "", 1], // D
    ]);
  });
});

describe("summarize: filters", () => {
  it("filters by provider and subject together; a record without a provider never matches a provider filter", () => {
    const rows = summarize(GOLDEN, q(["projectId"], { tenantId: "acme", provider: "openai" }));
    expect(rows.map((r) => [r.group, r.requests, r.costByCurrency])).toEqual([
      [{ projectId: "p1" }, 1, { USD: "0.11" }],
      [{ projectId: "p2" }, 1, { USD: "0.2" }],
    ]);
  });

  it("filters by model and by tenant", () => {
    expect(summarize(GOLDEN, q([], { model: "claude" }))[0]).toMatchObject({
      requests: 2,
      costByCurrency: { EUR: "1.25", USD: "0.0000001" },
    });
    expect(summarize(GOLDEN, q([], { tenantId: "beta" }))).toEqual([
      {
        group: {},
        inputTokens: 10,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        outputTokens: 5,
        totalTokens: 15,
        requests: 1,
        successes: 0,
        failures: 1,
        costByCurrency: { USD: "0.0000001" },
      },
    ]);
  });

  it("filters on optional subject fields: a record without the field does not match", () => {
    expect(summarize(GOLDEN, q(["feature"], { projectId: "p1" })).map((r) => [r.group, r.requests])).toEqual([
      [{ feature: "" }, 2],
    ]);
    expect(summarize(GOLDEN, q([], { feature: "chat" }))).toEqual([]);
  });

  it("returns [] when nothing matches, even with groupBy []", () => {
    expect(summarize(GOLDEN, q([], { model: "nope" }))).toEqual([]);
    expect(summarize([], q([]))).toEqual([]);
    expect(summarize([], q(["model"]))).toEqual([]);
  });
});

describe("summarize: meters and money", () => {
  it("counts reasoning as output and sums 5-minute and 1-hour cache writes", () => {
    const r = rec({
      eventId: "x",
      completedAt: "2026-03-01T01:00:00Z",
      meters: { output_tokens: 7, reasoning_tokens: 1000, cache_write_tokens: 11, cache_write_1h_tokens: 22 },
    });
    expect(summarize([r], q([]))[0]).toMatchObject({
      outputTokens: 1007,
      cacheWriteTokens: 33,
      inputTokens: 0,
      totalTokens: 1040,
    });
  });

  it("sums costs exactly: 0.1 + 0.2 = 0.3, and canonical strings", () => {
    const at = "2026-03-01T01:00:00Z";
    const rows = summarize(
      [
        rec({ eventId: "1", completedAt: at, total: "0.1" }),
        rec({ eventId: "2", completedAt: at, total: "0.2" }),
        rec({ eventId: "3", completedAt: at, total: "1.50", currency: "JPY" }),
        rec({ eventId: "4", completedAt: at, total: "1.50", currency: "JPY" }),
        rec({ eventId: "5", completedAt: at, total: "0.5", currency: "KWD" }),
        rec({ eventId: "6", completedAt: at, total: "-0.5", currency: "KWD" }),
      ],
      q([]),
    );
    expect(rows[0]?.costByCurrency).toEqual({ JPY: "3", KWD: "0", USD: "0.3" });
  });

  it("stays exact beyond 40 significant digits", () => {
    const at = "2026-03-01T01:00:00Z";
    const rows = summarize(
      [
        rec({ eventId: "1", completedAt: at, total: "100000000000000000000" }),
        rec({ eventId: "2", completedAt: at, total: "0.0000000000000000000000001" }),
      ],
      q([]),
    );
    expect(rows[0]?.costByCurrency).toEqual({ USD: "100000000000000000000.0000000000000000000000001" });
  });

  it("a zero-cost group reports its currency with cost 0", () => {
    const rows = summarize([rec({ eventId: "z", completedAt: "2026-03-01T01:00:00Z", total: "0" })], q([]));
    expect(rows[0]?.costByCurrency).toEqual({ USD: "0" });
  });

  it("throws OverflowError when a token sum passes 2^53-1, and is exact right at it", () => {
    const at = "2026-03-01T01:00:00Z";
    const max = Number.MAX_SAFE_INTEGER;
    const atMax = summarize(
      [
        rec({ eventId: "1", completedAt: at, meters: { input_tokens: max - 1 } }),
        rec({ eventId: "2", completedAt: at, meters: { input_tokens: 1 } }),
      ],
      q([]),
    );
    expect(atMax[0]).toMatchObject({ inputTokens: max, totalTokens: max });

    const across = thrown(() =>
      summarize(
        [
          rec({ eventId: "1", completedAt: at, meters: { input_tokens: max } }),
          rec({ eventId: "2", completedAt: at, meters: { input_tokens: 1 } }),
        ],
        q([]),
      ),
    );
    expect(across).toBeInstanceOf(OverflowError);
    expect(across).toMatchObject({ code: "overflow", path: "inputTokens" });

    const within = thrown(() =>
      summarize(
        [rec({ eventId: "1", completedAt: at, meters: { input_tokens: max, output_tokens: 1 } })],
        q([]),
      ),
    );
    expect(within).toMatchObject({ code: "overflow", path: "totalTokens" });
  });
});

describe("summarize: versions", () => {
  it("keeps only the highest version of an event whatever the order", () => {
    const at = "2026-03-01T01:00:00Z";
    const v = (version: number, total: string, input: number) =>
      rec({ eventId: "ev", version, completedAt: at, total, meters: { input_tokens: input } });
    for (const order of [
      [v(1, "1", 10), v(2, "2", 20), v(3, "3", 30)],
      [v(3, "3", 30), v(1, "1", 10), v(2, "2", 20)],
      [v(2, "2", 20), v(3, "3", 30), v(1, "1", 10)],
    ]) {
      expect(summarize(order, q([]))).toEqual([
        expect.objectContaining({ requests: 1, inputTokens: 30, costByCurrency: { USD: "3" } }),
      ]);
    }
  });

  it("the current version decides whether an event is in the window", () => {
    // v1 was in the window; its correction v2 moved out of it: the event is not counted at all.
    const v1 = rec({ eventId: "ev", completedAt: "2026-03-01T01:00:00Z", total: "1" });
    const v2 = rec({ eventId: "ev", version: 2, completedAt: "2026-03-05T01:00:00Z", total: "2" });
    expect(summarize([v1, v2], q([]))).toEqual([]);
  });

  it("accepts any iterable, e.g. a generator", () => {
    function* gen() {
      yield A1;
      yield A2;
    }
    expect(summarize(gen(), q([]))[0]).toMatchObject({ requests: 1, costByCurrency: { USD: "0.11" } });
  });
});

describe("summarize: [start, end)", () => {
  const at = (eventId: string, completedAt: string) => rec({ eventId, completedAt, total: "1" });
  const ids = (records: RatedUsageRecord[], query: SummaryQuery) =>
    summarize(records, { ...query, groupBy: [] })[0]?.requests ?? 0;

  it("includes a record exactly at start and excludes one exactly at end", () => {
    const query = q([]);
    expect(ids([at("s", START)], query)).toBe(1);
    expect(ids([at("e", END)], query)).toBe(0);
    expect(ids([at("e-1", "2026-03-02T23:59:59.999Z")], query)).toBe(1);
    expect(ids([at("s-1", "2026-02-28T23:59:59.999Z")], query)).toBe(0);
  });

  it("compares instants, not strings", () => {
    // "…00.000Z" sorts before "…00Z" as a string, yet it is the same instant as `end`.
    expect(ids([at("e", "2026-03-03T00:00:00.000Z")], q([]))).toBe(0);
    expect(ids([at("s", "2026-03-01T00:00:00Z")], { ...q([]), start: "2026-03-01T00:00:00.000Z" })).toBe(1);
    expect(ids([at("s", "2026-03-01T00:00:00.5Z")], { ...q([]), start: "2026-03-01T00:00:00.500000Z" })).toBe(
      1,
    );
  });

  it("day uses the UTC date of completedAt", () => {
    const rows = summarize(
      [at("late", "2026-03-01T23:59:59.999999Z"), at("early", "2026-03-02T00:00:00.000001Z")],
      q(["day"]),
    );
    expect(rows.map((r) => [r.group.day, r.requests])).toEqual([
      ["2026-03-01", 1],
      ["2026-03-02", 1],
    ]);
  });
});

describe("summarize: bad queries name the field", () => {
  const issuePaths = (query: unknown) => {
    const e = thrown(() => summarize(GOLDEN, query as SummaryQuery));
    expect(e).toBeInstanceOf(LatchValidationError);
    const err = e as LatchValidationError;
    expect(err.code).toBe("invalid_input");
    expect(err.subject).toBe("SummaryQuery");
    return err.issues.map((i) => i.path);
  };

  it("end not after start → end", () => {
    expect(issuePaths({ start: END, end: START, groupBy: [] })).toEqual(["end"]);
    expect(issuePaths({ start: START, end: START, groupBy: [] })).toEqual(["end"]);
  });

  it("an unknown group key → groupBy.<index>; a repeated one → groupBy", () => {
    expect(issuePaths({ start: START, end: END, groupBy: ["model", "colour"] })).toEqual(["groupBy.1"]);
    expect(issuePaths({ start: START, end: END, groupBy: ["model", "model"] })).toEqual(["groupBy"]);
  });

  it("a bad timestamp, filter or missing field is named", () => {
    expect(issuePaths({ start: "yesterday", end: END, groupBy: [] })).toEqual(["start"]);
    expect(issuePaths({ start: "2026-03-01T00:00:00+01:00", end: END, groupBy: [] })).toEqual(["start"]);
    expect(issuePaths({ start: START, end: END, groupBy: [], filters: { provider: "" } })).toEqual([
      "filters.provider",
    ]);
    expect(issuePaths({ start: START, end: END, groupBy: [], filters: { day: "2026-03-01" } })).toEqual([
      "filters",
    ]);
    expect(
      String(
        (
          thrown(() =>
            summarize([], { start: START, end: END, groupBy: [], filters: { day: "x" } } as never),
          ) as Error
        ).message,
      ),
    ).toContain('"day"');
    expect(issuePaths({ start: START, end: END, groupBy: [], extra: 1 })).toEqual([""]);
    expect(issuePaths({ start: START, end: END })).toEqual(["groupBy"]);
  });
});
