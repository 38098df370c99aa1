import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchValidationError } from "../../src/errors/index.js";
import { type LinesQuery, selectLines } from "../../src/reports/index.js";
import { type RatedUsageRecord, RatedUsageRecordSchema } from "../../src/schemas/rating.js";
import { observation, thrown } from "../support.js";

interface Spec {
  eventId: string;
  version?: number;
  completedAt: string;
  tenantId?: string;
  provider?: string;
  total?: string;
}

function rec(s: Spec): RatedUsageRecord {
  const version = s.version ?? 1;
  return RatedUsageRecordSchema.parse({
    ratedRecordId: `${s.eventId}:v${version}`,
    eventId: s.eventId,
    version,
    ...(version > 1 ? { supersedes: `${s.eventId}:v${version - 1}` } : {}),
    snapshotId: "snap-1",
    currency: "USD",
    lineItems: [],
    total: s.total ?? "0",
    ratedAt: "2026-03-05T00:00:00Z",
    observation: observation(
      { input_tokens: 1 },
      {
        eventId: s.eventId,
        subject: { tenantId: s.tenantId ?? "acme" },
        provider: { providerId: s.provider ?? "openai" },
        timing: { startedAt: s.completedAt, completedAt: s.completedAt },
      },
    ),
  });
}

const START = "2026-03-01T00:00:00Z";
const END = "2026-03-02T00:00:00Z";
const query = (extra: Partial<LinesQuery> = {}): LinesQuery => ({
  start: START,
  end: END,
  limit: 100,
  ...extra,
});

/** The expected order, written independently of the implementation. */
function expectedOrder(a: RatedUsageRecord, b: RatedUsageRecord): number {
  const ka = [
    Date.parse(a.observation.timing.completedAt),
    a.observation.timing.completedAt,
    a.eventId,
  ] as const;
  const kb = [
    Date.parse(b.observation.timing.completedAt),
    b.observation.timing.completedAt,
    b.eventId,
  ] as const;
  for (let i = 0; i < 3; i++) {
    if (ka[i] !== kb[i]) return (ka[i] ?? 0) < (kb[i] ?? 0) ? -1 : 1;
  }
  return 0;
}

/** Follows `next` until the last page; fails if paging does not terminate. */
function allPages(records: RatedUsageRecord[], q: LinesQuery): RatedUsageRecord[][] {
  const pages: RatedUsageRecord[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i <= records.length + 1; i++) {
    const page = selectLines(records, { ...q, ...(cursor === undefined ? {} : { cursor }) });
    pages.push(page.items);
    if (page.next === undefined) return pages;
    cursor = page.next;
  }
  throw new Error("paging did not terminate");
}

describe("selectLines: selection and order", () => {
  it("orders by completedAt instant, then the completedAt string, then eventId", () => {
    const records = [
      rec({ eventId: "b", completedAt: "2026-03-01T10:00:00Z" }),
      rec({ eventId: "a", completedAt: "2026-03-01T10:00:00Z" }),
      rec({ eventId: "c", completedAt: "2026-03-01T10:00:00.000Z" }), // same instant, "." < "Z"
      rec({ eventId: "d", completedAt: "2026-03-01T09:59:59.999999Z" }),
      rec({ eventId: "e", completedAt: "2026-03-01T10:00:00.001Z" }),
      rec({ eventId: "f", completedAt: "2026-03-01T02:00:00Z" }),
    ];
    expect(selectLines(records, query()).items.map((r) => r.eventId)).toEqual(["f", "d", "c", "a", "b", "e"]);
  });

  it("applies [start, end) and filters like summarize", () => {
    const records = [
      rec({ eventId: "at-start", completedAt: START }),
      rec({ eventId: "at-end", completedAt: END }),
      rec({ eventId: "at-end-other-form", completedAt: "2026-03-02T00:00:00.000Z" }),
      rec({ eventId: "before", completedAt: "2026-02-28T23:59:59.999Z" }),
      rec({ eventId: "last-ms", completedAt: "2026-03-01T23:59:59.999Z" }),
      rec({ eventId: "beta", completedAt: "2026-03-01T05:00:00Z", tenantId: "beta" }),
      rec({ eventId: "anthropic", completedAt: "2026-03-01T06:00:00Z", provider: "anthropic" }),
    ];
    expect(selectLines(records, query()).items.map((r) => r.eventId)).toEqual([
      "at-start",
      "beta",
      "anthropic",
      "last-ms",
    ]);
    expect(
      selectLines(records, query({ filters: { tenantId: "acme", provider: "openai" } })).items.map(
        (r) => r.eventId,
      ),
    ).toEqual(["at-start", "last-ms"]);
    expect(selectLines(records, query({ filters: { model: "nope" } }))).toEqual({ items: [] });
  });

  it("keeps only the highest version of an event", () => {
    const at = "2026-03-01T01:00:00Z";
    const records = [
      rec({ eventId: "ev", version: 2, completedAt: at, total: "2" }),
      rec({ eventId: "ev", version: 3, completedAt: at, total: "3" }),
      rec({ eventId: "ev", version: 1, completedAt: at, total: "1" }),
    ];
    const page = selectLines(records, query());
    expect(page.items.map((r) => [r.ratedRecordId, r.total])).toEqual([["ev:v3", "3"]]);
  });
});

describe("selectLines: pagination", () => {
  const records = ["e1", "e2", "e3", "e4", "e5"].map((id, i) =>
    rec({ eventId: id, completedAt: `2026-03-01T0${i}:00:00Z` }),
  );

  it("pages by limit; next only while more items remain", () => {
    const p1 = selectLines(records, query({ limit: 2 }));
    expect(p1.items.map((r) => r.eventId)).toEqual(["e1", "e2"]);
    expect(p1.next).toBeTypeOf("string");
    const p2 = selectLines(records, query({ limit: 2, cursor: p1.next }));
    expect(p2.items.map((r) => r.eventId)).toEqual(["e3", "e4"]);
    const p3 = selectLines(records, query({ limit: 2, cursor: p2.next }));
    expect(p3).toEqual({ items: [records[4]] });
    expect("next" in p3).toBe(false);
  });

  it("an exactly full last page has no next", () => {
    const p1 = selectLines(records, query({ limit: 5 }));
    expect(p1.items).toHaveLength(5);
    expect(p1.next).toBeUndefined();
    const p2 = selectLines(records.slice(0, 4), query({ limit: 2 }));
    const p3 = selectLines(records.slice(0, 4), query({ limit: 2, cursor: p2.next }));
    expect(p3.items.map((r) => r.eventId)).toEqual(["e3", "e4"]);
    expect(p3.next).toBeUndefined();
  });

  it("the cursor is base64url of the last item's sort key", () => {
    const p1 = selectLines(records, query({ limit: 1 }));
    expect(p1.next).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(p1.next ?? "", "base64url").toString("utf8"))).toEqual([
      Date.parse("2026-03-01T00:00:00Z"),
      "2026-03-01T00:00:00Z",
      "e1",
    ]);
  });

  it("a record stored after a page was read shows up later when it sorts after the cursor", () => {
    const store = records.slice(0, 3);
    const p1 = selectLines(store, query({ limit: 2 }));
    store.push(rec({ eventId: "late-before", completedAt: "2026-03-01T00:30:00Z" })); // before the cursor
    store.push(rec({ eventId: "late-after", completedAt: "2026-03-01T01:30:00Z" })); // after it
    const p2 = selectLines(store, query({ limit: 2, cursor: p1.next }));
    expect(p2.items.map((r) => r.eventId)).toEqual(["late-after", "e3"]);
    expect(p2.next).toBeUndefined();
  });

  it("rejects a cursor it did not produce, at path cursor", () => {
    const valid = selectLines(records, query({ limit: 1 })).next ?? "";
    const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
    const bad = [
      "not a cursor!",
      "%%%",
      `${valid}=`, // padding: not canonical
      `${valid}A`, // extra data
      b64("not json"),
      b64("{}"),
      b64("[1,2]"),
      b64('[0,"2026-03-01T00:00:00Z","e1"]'), // ms does not match the timestamp
      b64('["1","2026-03-01T00:00:00Z","e1"]'),
      b64('[1772323200000,"2026-03-01T00:00:00Z",5]'),
      b64('[1772323200000, "2026-03-01T00:00:00Z", "e1"]'), // not the canonical JSON
    ];
    for (const cursor of bad) {
      const e = thrown(() => selectLines(records, query({ cursor })));
      expect(e, cursor).toBeInstanceOf(LatchValidationError);
      expect((e as LatchValidationError).issues.map((i) => i.path)).toEqual(["cursor"]);
    }
    // The same key, canonically encoded, is accepted.
    expect(
      selectLines(records, query({ cursor: b64('[1772323200000,"2026-03-01T00:00:00Z","e1"]') })).items,
    ).toHaveLength(4);
  });

  it("bad queries name the field", () => {
    const paths = (q: unknown) =>
      (thrown(() => selectLines(records, q as LinesQuery)) as LatchValidationError).issues.map((i) => i.path);
    expect(paths(query({ limit: 0 }))).toEqual(["limit"]);
    expect(paths(query({ limit: 1.5 }))).toEqual(["limit"]);
    expect(paths(query({ limit: 10_001 }))).toEqual(["limit"]);
    expect(paths(query({ cursor: "" }))).toEqual(["cursor"]);
    expect(paths(query({ end: START }))).toEqual(["end"]);
    expect(paths(query({ start: "2026-03-01" }))).toEqual(["start"]);
    expect(paths({ start: START, end: END })).toEqual(["limit"]);
  });
});

// ── properties ──────────────────────────────────────────────────────────────────

const WINDOW_START = Date.parse(START);

/** Timestamps crowded into a few milliseconds around the window start, in several spellings. */
const timestamp = fc
  .tuple(fc.integer({ min: -3, max: 6 }), fc.constantFrom("ms", "short", "micro", "nano"))
  .map(([offset, form]) => {
    const iso = new Date(WINDOW_START + offset).toISOString(); // …T00:00:00.003Z
    if (form === "short" && iso.endsWith(".000Z")) return iso.replace(".000Z", "Z");
    if (form === "micro") return iso.replace("Z", "500Z");
    if (form === "nano") return iso.replace("Z", "000001Z");
    return iso;
  });

const spec = fc.record({
  eventId: fc.string({
    minLength: 1,
    maxLength: 4,
    unit: fc.constantFrom("a", "b", "é", ":", "\u{1F600}", "z"),
  }),
  completedAt: timestamp,
  tenantId: fc.constantFrom("acme", "beta"),
});
const specs = fc.uniqueArray(spec, { selector: (s) => s.eventId, maxLength: 40 });
// A narrow window so that some records fall outside it on both sides.
const windowQuery = fc.record({
  start: fc.constantFrom(START, new Date(WINDOW_START + 1).toISOString()),
  end: fc.constantFrom(new Date(WINDOW_START + 3).toISOString(), new Date(WINDOW_START + 5).toISOString()),
  filters: fc.constantFrom(undefined, { tenantId: "acme" }),
});

const inWindow = (r: RatedUsageRecord, q: { start: string; end: string; filters?: { tenantId: string } }) => {
  const ms = Date.parse(r.observation.timing.completedAt);
  return (
    ms >= Date.parse(q.start) &&
    ms < Date.parse(q.end) &&
    (q.filters === undefined || r.observation.subject.tenantId === q.filters.tenantId)
  );
};

const toQuery = (
  w: { start: string; end: string; filters: { tenantId: string } | undefined },
  limit: number,
) => ({
  start: w.start,
  end: w.end,
  limit,
  ...(w.filters ? { filters: w.filters } : {}),
});

describe("selectLines: properties", () => {
  it("paging with random limits returns every matching record exactly once, in order", () => {
    fc.assert(
      fc.property(
        specs,
        windowQuery,
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1 }),
        (ss, w, limits) => {
          const records = ss.map((s) => rec(s));
          const expected = records.filter((r) => inWindow(r, w)).sort(expectedOrder);
          const seen: RatedUsageRecord[] = [];
          let cursor: string | undefined;
          for (let i = 0; ; i++) {
            const limit = limits[i % limits.length] ?? 1;
            const page = selectLines(records, { ...toQuery(w, limit), ...(cursor ? { cursor } : {}) });
            expect(page.items.length).toBeLessThanOrEqual(limit);
            if (page.next !== undefined) expect(page.items).toHaveLength(limit);
            seen.push(...page.items);
            if (page.next === undefined) break;
            cursor = page.next;
            expect(i).toBeLessThan(records.length + 1);
          }
          expect(seen.map((r) => r.eventId)).toEqual(expected.map((r) => r.eventId));
          // a single page with a large limit gives the same list
          expect(allPages(records, toQuery(w, 10_000))).toEqual([expected]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("records inserted between page fetches are never repeated and appear when they sort after the cursor", () => {
    fc.assert(
      fc.property(
        specs,
        windowQuery,
        fc.integer({ min: 1, max: 5 }),
        fc.nat({ max: 40 }),
        (ss, w, limit, initialCount) => {
          const all = ss.map((s) => rec(s));
          const store = all.slice(0, Math.min(initialCount, all.length));
          const pending = all.slice(store.length);
          const mustAppear = new Set(store.filter((r) => inWindow(r, w)).map((r) => r.eventId));
          const seen: RatedUsageRecord[] = [];
          let cursor: string | undefined;
          for (let i = 0; ; i++) {
            expect(i).toBeLessThan(all.length + 2);
            const page = selectLines(store, { ...toQuery(w, limit), ...(cursor ? { cursor } : {}) });
            seen.push(...page.items);
            if (page.next === undefined) break;
            cursor = page.next;
            // Between fetches, store up to two more records: those sorting after the cursor (the
            // last item returned) must show up on a later page; those before it never do.
            const last = seen[seen.length - 1] as RatedUsageRecord;
            for (const r of pending.splice(0, 2)) {
              store.push(r);
              if (inWindow(r, w) && expectedOrder(r, last) > 0) mustAppear.add(r.eventId);
            }
          }
          const ids = seen.map((r) => r.eventId);
          expect(new Set(ids).size).toBe(ids.length); // nothing repeats
          for (let i = 1; i < seen.length; i++) {
            expect(expectedOrder(seen[i - 1] as RatedUsageRecord, seen[i] as RatedUsageRecord)).toBe(-1);
          }
          for (const id of mustAppear) expect(ids).toContain(id);
          for (const r of seen) expect(inWindow(r, w)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
