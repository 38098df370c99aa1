import { describe, expect, it } from "vitest";
import { CorruptRecordError, ExportError, LatchError } from "../../src/errors/index.js";
import {
  BILLING_COLUMN_TYPES,
  BILLING_COLUMNS,
  type BillingRecord,
  buildBillingExport,
  buildBillingRows,
  resolvePreviousVersions,
  toBillingRecord,
} from "../../src/export/index.js";
import { DefaultRatingEngine } from "../../src/index.js";
import { ctx, observation, snapshot } from "../support.js";
import { entry, rec } from "./helpers.js";

function exportError(fn: () => unknown): ExportError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ExportError);
    return e as ExportError;
  }
  throw new Error("expected an ExportError");
}

const v1 = rec({
  total: "0.0105",
  meters: { input_tokens: 1200, cached_input_tokens: 300, output_tokens: 700, "custom:web_search": 2 },
  observation: {
    subject: {
      tenantId: "acme",
      orgId: "org-1",
      projectId: "proj-9",
      apiKeyId: "key-3",
      endUserId: "user-7",
      feature: "chat",
    },
    model: { billableModel: "gpt-4o", vendor: "openai", region: "us", tier: "flex" },
    timing: { startedAt: "2026-03-01T12:00:00.250Z", completedAt: "2026-03-01T12:00:01.5Z" },
    // Given out of order: the column sorts the keys.
    attributes: { team: "a", provider_response_id: "chatcmpl-1" },
  },
});
const v2 = rec({
  version: 2,
  total: "0.0095",
  ratedAt: "2026-03-02T08:00:00Z",
  meters: { input_tokens: 1000, output_tokens: 700 },
  observation: { outcome: { kind: "error", code: "rate_limit" } },
});

describe("BillingRecord", () => {
  it("has one fixed column order, typed", () => {
    expect(BILLING_COLUMNS).toEqual([
      "schema",
      "rated_record_id",
      "event_id",
      "version",
      "supersedes",
      "tenant_id",
      "org_id",
      "project_id",
      "api_key_id",
      "end_user_id",
      "feature",
      "provider",
      "model",
      "model_tier",
      "vendor",
      "region",
      "input_tokens",
      "cached_input_tokens",
      "cache_write_tokens",
      "cache_write_1h_tokens",
      "output_tokens",
      "reasoning_tokens",
      "audio_input_tokens",
      "audio_output_tokens",
      "image_count",
      "image_input_tokens",
      "image_output_tokens",
      "web_search_requests",
      "web_fetch_requests",
      "cached_audio_input_tokens",
      "custom_meters",
      "cost",
      "cost_delta",
      "cost_minor_units",
      "currency",
      "snapshot_id",
      "source",
      "outcome",
      "started_at",
      "completed_at",
      "rated_at",
      "seq",
      "attributes",
    ]);
    const integers = BILLING_COLUMNS.filter((c) => BILLING_COLUMN_TYPES[c] === "integer");
    expect(integers).toEqual([
      "version",
      "input_tokens",
      "cached_input_tokens",
      "cache_write_tokens",
      "cache_write_1h_tokens",
      "output_tokens",
      "reasoning_tokens",
      "audio_input_tokens",
      "audio_output_tokens",
      "image_count",
      "image_input_tokens",
      "image_output_tokens",
      "web_search_requests",
      "web_fetch_requests",
      "cached_audio_input_tokens",
    ]);
  });

  it("carries the image and server-tool meters in their own columns, right after image_count", () => {
    const record = rec({
      total: "0.5",
      meters: {
        input_tokens: 10,
        image_input_tokens: 40,
        image_output_tokens: 1290,
        web_search_requests: 3,
        web_fetch_requests: 1,
      },
    });
    const row = toBillingRecord(entry(5, record), undefined);
    expect(row).toMatchObject({
      input_tokens: 10,
      image_count: 0,
      image_input_tokens: 40,
      image_output_tokens: 1290,
      web_search_requests: 3,
      web_fetch_requests: 1,
      custom_meters: "{}",
    });
    const at = BILLING_COLUMNS.indexOf("image_count");
    expect(BILLING_COLUMNS.slice(at, at + 7)).toEqual([
      "image_count",
      "image_input_tokens",
      "image_output_tokens",
      "web_search_requests",
      "web_fetch_requests",
      "cached_audio_input_tokens",
      "custom_meters",
    ]);
  });

  it("carries cached audio input in its own column, right after web_fetch_requests", () => {
    // A Gemini call with 32,000 cached audio and 20 cached text tokens.
    const record = rec({
      total: "0.0034",
      meters: {
        input_tokens: 980,
        cached_input_tokens: 20,
        output_tokens: 9,
        cached_audio_input_tokens: 32000,
      },
    });
    const row = toBillingRecord(entry(6, record), undefined);
    expect(row).toMatchObject({
      input_tokens: 980,
      cached_input_tokens: 20,
      output_tokens: 9,
      cached_audio_input_tokens: 32000,
    });
    expect(BILLING_COLUMN_TYPES.cached_audio_input_tokens).toBe("integer");
  });

  it("flattens a first version (golden)", () => {
    const row = toBillingRecord(entry(41, v1), undefined);
    expect(row).toEqual({
      schema: "latch.billing-export.v1",
      rated_record_id: "req-1:0:openai:v1",
      event_id: "req-1:0:openai",
      version: 1,
      supersedes: "",
      tenant_id: "acme",
      org_id: "org-1",
      project_id: "proj-9",
      api_key_id: "key-3",
      end_user_id: "user-7",
      feature: "chat",
      provider: "openai",
      model: "gpt-4o",
      model_tier: "flex",
      vendor: "openai",
      region: "us",
      input_tokens: 1200,
      cached_input_tokens: 300,
      cache_write_tokens: 0,
      cache_write_1h_tokens: 0,
      output_tokens: 700,
      reasoning_tokens: 0,
      audio_input_tokens: 0,
      audio_output_tokens: 0,
      image_count: 0,
      image_input_tokens: 0,
      image_output_tokens: 0,
      web_search_requests: 0,
      web_fetch_requests: 0,
      cached_audio_input_tokens: 0,
      custom_meters: '{"web_search":2}',
      cost: "0.0105",
      cost_delta: "0.0105",
      cost_minor_units: "1",
      currency: "USD",
      snapshot_id: "snap-1",
      source: "provider_reported",
      outcome: "success",
      started_at: "2026-03-01T12:00:00.250Z",
      completed_at: "2026-03-01T12:00:01.5Z",
      rated_at: "2026-03-01T12:00:05Z",
      seq: "41",
      attributes: '{"provider_response_id":"chatcmpl-1","team":"a"}',
    } satisfies BillingRecord);
    expect(Object.keys(row)).toEqual([...BILLING_COLUMNS]);
  });

  it("flattens a correction with cost_delta = v2 − v1, negative allowed (golden)", () => {
    const row = toBillingRecord(entry(57, v2), v1);
    expect(row).toEqual({
      schema: "latch.billing-export.v1",
      rated_record_id: "req-1:0:openai:v2",
      event_id: "req-1:0:openai",
      version: 2,
      supersedes: "req-1:0:openai:v1",
      tenant_id: "acme",
      org_id: "",
      project_id: "",
      api_key_id: "",
      end_user_id: "",
      feature: "",
      provider: "openai",
      model: "gpt-4o",
      model_tier: "",
      vendor: "",
      region: "",
      input_tokens: 1000,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      cache_write_1h_tokens: 0,
      output_tokens: 700,
      reasoning_tokens: 0,
      audio_input_tokens: 0,
      audio_output_tokens: 0,
      image_count: 0,
      image_input_tokens: 0,
      image_output_tokens: 0,
      web_search_requests: 0,
      web_fetch_requests: 0,
      cached_audio_input_tokens: 0,
      custom_meters: "{}",
      cost: "0.0095",
      cost_delta: "-0.001",
      cost_minor_units: "1",
      currency: "USD",
      snapshot_id: "snap-1",
      source: "corrected:req-1:0:openai",
      outcome: "error:rate_limit",
      started_at: "2026-03-01T12:00:01Z",
      completed_at: "2026-03-01T12:00:01Z",
      rated_at: "2026-03-02T08:00:00Z",
      seq: "57",
      attributes: "{}",
    } satisfies BillingRecord);
  });

  it("writes attributes as sorted JSON, last, after seq (every earlier column keeps its position)", () => {
    expect(BILLING_COLUMNS.at(-2)).toBe("seq");
    expect(BILLING_COLUMNS.at(-1)).toBe("attributes");
    expect(BILLING_COLUMN_TYPES.attributes).toBe("string");
    const attributes = {
      team: "a",
      "10": "integer-like keys sort as text, not first",
      "9": "x",
      provider_response_id: "chatcmpl-1",
      "cost centre": 'say "hi", then\nnew line\r\n\ttab \\ backslash',
      formula: '=HYPERLINK("http://evil","x")',
      plus: "+cmd",
      ünïcödé: "日本語 ✓ 🧾👩🏽‍💻",
      empty: "",
    };
    const row = toBillingRecord(entry(1, rec({ total: "0.1", observation: { attributes } })), undefined);
    // Keys in code-unit order; JSON.stringify's escapes; non-ASCII and emoji as they are.
    expect(row.attributes).toBe(
      '{"10":"integer-like keys sort as text, not first","9":"x",' +
        '"cost centre":"say \\"hi\\", then\\nnew line\\r\\n\\ttab \\\\ backslash","empty":"",' +
        '"formula":"=HYPERLINK(\\"http://evil\\",\\"x\\")","plus":"+cmd",' +
        '"provider_response_id":"chatcmpl-1","team":"a","ünïcödé":"日本語 ✓ 🧾👩🏽‍💻"}',
    );
    expect(JSON.parse(row.attributes)).toEqual(attributes);
    // Same attributes in another insertion order ⇒ the same text.
    const reversed = Object.fromEntries(Object.entries(attributes).reverse());
    const again = toBillingRecord(
      entry(2, rec({ total: "0.1", observation: { attributes: reversed } })),
      undefined,
    );
    expect(again.attributes).toBe(row.attributes);
    // None, or an empty map ⇒ "{}".
    expect(toBillingRecord(entry(3, rec({ total: "0.1" })), undefined).attributes).toBe("{}");
    expect(
      toBillingRecord(entry(4, rec({ total: "0.1", observation: { attributes: {} } })), undefined).attributes,
    ).toBe("{}");
    // A stored value that is not a string (the schema allows none) is invalid data, not "null" text.
    const bad = rec({ total: "0.1", observation: { attributes: { team: 7 as unknown as string } } });
    const e = exportError(() => toBillingRecord(entry(5, bad), undefined));
    expect(e.kind).toBe("invalid_data");
    expect(e.message).toContain('attribute "team" is not a string');
  });

  it("a stored attributes value that is not an object is invalid_data, never made-up labels", () => {
    // A corrupt stored observation: null threw a TypeError; a string, an array or a number
    // were written as {"0":"a","1":"b"} or {} (labels the call never had).
    for (const attributes of [null, "ab", ["x", "y"], 5, true]) {
      const bad = rec({
        total: "0.1",
        observation: { attributes: attributes as unknown as Record<string, string> },
      });
      const e = exportError(() => toBillingRecord(entry(6, bad), undefined));
      expect(e.kind).toBe("invalid_data");
      expect(e.message).toContain("attributes is not an object");
    }
  });

  it("canonicalises amounts and computes deltas exactly", () => {
    const a = rec({ total: "1.50" });
    const b = rec({ version: 2, total: "0.1000000000000000000000000000001" });
    expect(toBillingRecord(entry(1, a), undefined).cost).toBe("1.5");
    const row = toBillingRecord(entry(2, b), a);
    expect(row.cost).toBe("0.1000000000000000000000000000001");
    expect(row.cost_delta).toBe("-1.3999999999999999999999999999999");
    expect(toBillingRecord(entry(3, rec({ version: 2, total: "1.5" })), a).cost_delta).toBe("0");
  });

  it("rounds cost to ISO 4217 minor units half-even", () => {
    const minor = (total: string, currency: string) =>
      toBillingRecord(entry(1, rec({ total, currency })), undefined).cost_minor_units;
    expect(minor("0.125", "USD")).toBe("12");
    expect(minor("0.135", "USD")).toBe("14");
    expect(minor("0.1250001", "USD")).toBe("13");
    expect(minor("2.5", "JPY")).toBe("2");
    expect(minor("3.5", "JPY")).toBe("4");
    expect(minor("1.0005", "KWD")).toBe("1000");
    expect(minor("1.0015", "KWD")).toBe("1002");
    expect(minor("0", "EUR")).toBe("0");
  });

  it("flattens what the rating engine produces", () => {
    const engine = new DefaultRatingEngine();
    const snap = snapshot({
      prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
    });
    const first = engine.rate(observation({ input_tokens: 1000, output_tokens: 500 }), snap as never, ctx);
    const second = engine.rate(observation({ input_tokens: 1000, output_tokens: 400 }), snap as never, {
      ...ctx,
      version: 2,
    });
    const rows = buildBillingRows(
      [entry(1, first), entry(2, second)],
      new Map([[first.ratedRecordId, first]]),
    );
    expect(rows.map((r) => [r.cost, r.cost_delta, r.cost_minor_units, r.supersedes])).toEqual([
      ["0.0075", "0.0075", "1", ""],
      ["0.0065", "-0.001", "1", "req-1:0:openai:v1"],
    ]);
  });

  it("never guesses: missing or inconsistent previous versions are invalid_data", () => {
    expect(exportError(() => toBillingRecord(entry(2, v2), undefined)).kind).toBe("invalid_data");
    expect(exportError(() => toBillingRecord(entry(2, v2), undefined)).message).toContain(
      "req-1:0:openai:v1",
    );
    const eur = rec({ total: "0.01", currency: "EUR" });
    expect(exportError(() => toBillingRecord(entry(2, v2), eur)).kind).toBe("invalid_data");
    expect(exportError(() => toBillingRecord(entry(1, v1), v1)).kind).toBe("invalid_data");
    const { supersedes: _s, ...noSupersedes } = v2;
    expect(exportError(() => toBillingRecord(entry(2, noSupersedes), v1)).kind).toBe("invalid_data");
    expect(exportError(() => toBillingRecord(entry(1, { ...v1, supersedes: "x:v0" }), v1)).kind).toBe(
      "invalid_data",
    );
  });

  it("rejects malformed stored data as invalid_data", () => {
    const bad = (e: Parameters<typeof toBillingRecord>[0]) =>
      exportError(() => toBillingRecord(e, undefined));
    expect(bad(entry(1, { ...v1, total: "1e-3" })).kind).toBe("invalid_data");
    expect(bad(entry(1, { ...v1, currency: "XXX" })).kind).toBe("invalid_data");
    expect(bad(entry("12a", v1)).kind).toBe("invalid_data");
    expect(bad(entry(1, { ...v1, ratedAt: "2026-03-01 12:00:00" })).kind).toBe("invalid_data");
    const e = bad(entry(1, { ...v1, total: "NaN" }));
    expect(LatchError.isInstance(e) && e.code).toBe("export_failed");
    expect(e.isRetryable).toBe(false);
  });

  it("rejects a batch that lists a version or a seq twice", () => {
    const prev = new Map();
    expect(exportError(() => buildBillingRows([entry(1, v1), entry(2, v1)], prev)).kind).toBe("invalid_data");
    const other = rec({ requestId: "req-2", total: "1" });
    expect(exportError(() => buildBillingRows([entry(1, v1), entry(1, other)], prev)).kind).toBe(
      "invalid_data",
    );
  });
});

describe("resolvePreviousVersions", () => {
  it("looks in the batch first, then asks the lookup once per id", async () => {
    const asked: string[] = [];
    const r2 = rec({ requestId: "req-2", version: 2, total: "0.5" });
    const r3 = rec({ requestId: "req-2", version: 3, total: "0.25" });
    const found = await resolvePreviousVersions(
      [entry(5, v1), entry(6, v2), entry(7, r2), entry(8, r3)],
      async (id) => {
        asked.push(id);
        return id === "req-2:0:openai:v1" ? { total: "1", currency: "USD" } : undefined;
      },
    );
    expect(asked).toEqual(["req-2:0:openai:v1"]);
    expect([...found.keys()].sort()).toEqual(["req-1:0:openai:v1", "req-2:0:openai:v1", "req-2:0:openai:v2"]);
    const rows = buildBillingRows([entry(5, v1), entry(6, v2), entry(7, r2), entry(8, r3)], found);
    expect(rows.map((r) => r.cost_delta)).toEqual(["0.0105", "-0.001", "-0.5", "-0.25"]);
  });

  it("turns a failing lookup into a retryable connection error", async () => {
    const err = await resolvePreviousVersions([entry(6, v2)], async () => {
      throw new Error("socket hang up");
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).kind).toBe("connection");
    expect((err as ExportError).isRetryable).toBe(true);
  });

  it("wraps a store that failed as a Latch error (busy, not migrated) like a driver's error; passes others through", async () => {
    /** What @latch/postgres throws with these codes (PostgresBusyError, SchemaNotMigratedError). */
    class StoreError extends LatchError {}
    for (const code of ["store_busy", "schema_not_migrated", "schema_incompatible"] as const) {
      const failure = new StoreError({ code, message: code });
      const err = await resolvePreviousVersions([entry(6, v2)], async () => {
        throw failure;
      }).catch((e: unknown) => e);
      expect(ExportError.isInstance(err)).toBe(true);
      expect(err).toMatchObject({ kind: "connection", isRetryable: true, cause: failure });
    }
    const corrupt = new CorruptRecordError({ id: "x", reason: "hash differs" });
    const err = await resolvePreviousVersions([entry(6, v2)], async () => {
      throw corrupt;
    }).catch((e: unknown) => e);
    expect(err).toBe(corrupt);
  });
});

describe("buildBillingExport", () => {
  it("sums cost_delta per currency, exact and rounded once, with a grand total for one currency", () => {
    const a1 = rec({ requestId: "a", total: "0.004" });
    const b1 = rec({ requestId: "b", total: "0.0031" });
    const a2 = rec({ requestId: "a", version: 2, total: "0.0029" });
    const out = buildBillingExport([a1, b1, a2], "2026-03-02T00:00:00Z");
    expect(out.schema).toBe("latch.billing-export.v1");
    expect(out.exportedAt).toBe("2026-03-02T00:00:00Z");
    expect(out.rows.map((r) => [r.rated_record_id, r.cost_delta, r.cost_minor_units, r.seq])).toEqual([
      ["a:0:openai:v1", "0.004", "0", ""],
      ["b:0:openai:v1", "0.0031", "0", ""],
      ["a:0:openai:v2", "-0.0011", "0", ""],
    ]);
    // 0.004 + 0.0031 − 0.0011 = 0.006 → 1 cent (the rows' rounded costs sum to 0).
    expect(out.totalsByCurrency).toEqual({ USD: { exact: "0.006", minorUnits: 1n } });
    expect(out.grandTotal).toBe("0.006");
    expect(out.grandTotalError).toBeUndefined();
  });

  it("never sums across currencies", () => {
    const out = buildBillingExport(
      [rec({ requestId: "a", total: "1.005" }), rec({ requestId: "b", total: "150.5", currency: "JPY" })],
      "2026-03-02T00:00:00Z",
    );
    expect(out.totalsByCurrency).toEqual({
      JPY: { exact: "150.5", minorUnits: 150n },
      USD: { exact: "1.005", minorUnits: 100n },
    });
    expect(out.grandTotal).toBeUndefined();
    expect(out.grandTotalError).toBe("mixed_currencies");
  });

  it("has a zero grand total for no rows, and validates exportedAt", () => {
    expect(buildBillingExport([], "2026-03-02T00:00:00Z")).toEqual({
      schema: "latch.billing-export.v1",
      exportedAt: "2026-03-02T00:00:00Z",
      rows: [],
      totalsByCurrency: {},
      grandTotal: "0",
    });
    let err: unknown;
    try {
      buildBillingExport([], "yesterday");
    } catch (e) {
      err = e;
    }
    expect(LatchError.isInstance(err) && err.code).toBe("invalid_input");
    expect((err as { issues: Array<{ path: string }> }).issues[0]?.path).toBe("exportedAt");
  });

  it("requires every superseded version in the list", () => {
    expect(exportError(() => buildBillingExport([v2], "2026-03-02T00:00:00Z")).kind).toBe("invalid_data");
  });
});
