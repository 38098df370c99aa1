import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ChangeLogEntry } from "../../src/contracts/rated-record-store.js";
import { LatchValidationError } from "../../src/errors/index.js";
import {
  type BillingManifest,
  batchIdFor,
  manifestFor,
  normalizeFormats,
  parseIntent,
  planBatch,
  planBatchAsync,
  resolvePreviousVersions,
} from "../../src/export/index.js";
import { LatchDecimal, type RatedUsageRecord } from "../../src/index.js";
import { entry, rec } from "./helpers.js";

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("manifest", () => {
  const a1 = rec({ requestId: "a", total: "0.004", ratedAt: "2026-03-01T12:00:05Z" });
  const b1 = rec({
    requestId: "b",
    total: "150.5",
    currency: "JPY",
    completedAt: "2026-03-02T00:00:01Z",
    ratedAt: "2026-03-02T00:00:02.5Z",
  });
  const a2 = rec({ requestId: "a", version: 2, total: "0.0029", ratedAt: "2026-03-02T00:00:02Z" });
  const c1 = rec({ requestId: "c", total: "0.0031" });
  const entries = [entry(3, a1), entry(4, b1), entry(5, a2), entry(6, c1)];

  it("planBatchAsync plans exactly what planBatch plans (gzip on the thread pool)", async () => {
    const input = {
      entries,
      previous: new Map(),
      prefix: "bill",
      formats: ["jsonl.gz", "csv", "csv.gz"] as const,
      batchId: "b-3",
    };
    const sync = planBatch({ ...input, formats: [...input.formats] });
    const async_ = await planBatchAsync({ ...input, formats: [...input.formats] });
    expect(async_.parts.map((p) => [p.key, Buffer.from(p.bytes).toString("base64")])).toEqual(
      sync.parts.map((p) => [p.key, Buffer.from(p.bytes).toString("base64")]),
    );
    expect(manifestFor(async_).bytes).toEqual(manifestFor(sync).bytes);
  });

  it("lists every part, rows, cursor range and per-currency cost_delta sums, exact and rounded once", () => {
    const plan = planBatch({
      entries,
      previous: new Map(),
      prefix: "bill",
      formats: ["csv"],
      batchId: "b-3",
    });
    const m = manifestFor(plan);
    expect(m.key).toBe("bill/latch.billing-export.v1/_manifests/b-3.json");
    const parsed = JSON.parse(text(m.bytes)) as BillingManifest;
    const [p1, p2] = plan.parts;
    expect(p1 && p2).toBeTruthy();
    expect(parsed).toEqual({
      schema: "latch.billing-export.v1",
      batchId: "b-3",
      createdAt: "2026-03-02T00:00:02.5Z",
      formats: ["csv"],
      cursor: { firstSeq: "3", lastSeq: "6" },
      rows: 4,
      objects: [
        {
          key: "bill/latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000003-0000000000000000000000000000000000000006.csv",
          format: "csv",
          dt: "2026-03-01",
          rows: 3,
          bytes: p1?.bytes.byteLength,
          sha256: sha(p1?.bytes ?? new Uint8Array()),
        },
        {
          key: "bill/latch.billing-export.v1/dt=2026-03-02/part-0000000000000000000000000000000000000004-0000000000000000000000000000000000000004.csv",
          format: "csv",
          dt: "2026-03-02",
          rows: 1,
          bytes: p2?.bytes.byteLength,
          sha256: sha(p2?.bytes ?? new Uint8Array()),
        },
      ],
      // USD: 0.004 − 0.0011 + 0.0031 = 0.006 → 1 cent, although every row rounds to 0 cents.
      totalsByCurrency: {
        JPY: { costDeltaExact: "150.5", costDeltaMinorUnits: "150" },
        USD: { costDeltaExact: "0.006", costDeltaMinorUnits: "1" },
      },
    });
    // Canonical JSON: sorted keys, no whitespace.
    expect(text(m.bytes).startsWith('{"batchId":"b-3","createdAt":"2026-03-02T00:00:02.5Z","cursor":{')).toBe(
      true,
    );
    expect(text(m.bytes)).not.toMatch(/\s/);
    // Same batch ⇒ same bytes.
    const again = manifestFor(
      planBatch({ entries, previous: new Map(), prefix: "bill", formats: ["csv"], batchId: "b-3" }),
    );
    expect(Buffer.from(again.bytes).equals(Buffer.from(m.bytes))).toBe(true);
  });

  it("records an intent written before the parts", () => {
    const plan = planBatch({ entries, previous: new Map(), batchId: "b-3" });
    expect(plan.intent.key).toBe("latch.billing-export.v1/_intents/b-3.json");
    expect(text(plan.intent.bytes)).toBe(
      '{"batchId":"b-3","firstSeq":"3","formats":["jsonl.gz"],"lastSeq":"6","rows":4,"schema":"latch.billing-export.v1"}',
    );
    expect(parseIntent(plan.intent.bytes, "b-3")).toEqual({
      schema: "latch.billing-export.v1",
      batchId: "b-3",
      rows: 4,
      firstSeq: "3",
      lastSeq: "6",
      formats: ["jsonl.gz"],
    });
    expect(() => parseIntent(new TextEncoder().encode("{}"), "b-3")).toThrow(/malformed/);
  });

  it("orders formats canonically and validates them, naming formats", () => {
    expect(normalizeFormats(undefined)).toEqual(["jsonl.gz"]);
    expect(normalizeFormats(["csv", "jsonl.gz", "csv"])).toEqual(["jsonl.gz", "csv"]);
    expect(normalizeFormats(["parquet", "csv.gz", "csv"])).toEqual(["csv", "csv.gz", "parquet"]);
    for (const [bad, path] of [
      [[], "formats"],
      [["csv.zip"], "formats.0"],
      [["csv", "json"], "formats.1"],
    ] as const) {
      let err: unknown;
      try {
        normalizeFormats(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LatchValidationError);
      expect((err as LatchValidationError).issues[0]?.path).toBe(path);
    }
  });
});

// ── property: manifests sum to the current totals ─────────────────────────────────────────

const CURRENCIES = ["USD", "EUR", "JPY", "KWD"] as const;
const amountArb = fc
  .tuple(fc.bigInt({ min: 0n, max: 10n ** 14n }), fc.integer({ min: 0, max: 14 }))
  .map(([units, scale]) =>
    new LatchDecimal(units.toString()).dividedBy(new LatchDecimal(10).pow(scale)).toFixed(),
  );
const opArb = fc.oneof(
  fc.record({
    kind: fc.constant("new" as const),
    currency: fc.constantFrom(...CURRENCIES),
    total: amountArb,
  }),
  fc.record({ kind: fc.constant("correct" as const), pick: fc.nat(), total: amountArb }),
);
const dayArb = fc.constantFrom(
  "2026-02-28T23:59:59.999Z",
  "2026-03-01T00:00:00Z",
  "2026-03-01T13:30:00Z",
  "2026-03-02T08:00:00.5Z",
);

describe("manifest sums (property)", () => {
  it("summing cost_delta over every manifest gives each currency's current total exactly", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(opArb, dayArb), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        async (ops, sizes) => {
          // Build the change log: first versions and corrections in one sequence.
          const log: ChangeLogEntry[] = [];
          const current = new Map<string, RatedUsageRecord>();
          const all = new Map<string, RatedUsageRecord>();
          for (const [op, completedAt] of ops) {
            let record: RatedUsageRecord;
            if (op.kind === "new" || current.size === 0) {
              const currency = op.kind === "new" ? op.currency : "USD";
              record = rec({ requestId: `e${current.size}`, total: op.total, currency, completedAt });
            } else {
              const events = [...current.values()];
              const prev = events[op.pick % events.length] as RatedUsageRecord;
              record = rec({
                requestId: prev.eventId.split(":")[0],
                version: prev.version + 1,
                total: op.total,
                currency: prev.currency,
                completedAt,
              });
            }
            current.set(record.eventId, record);
            all.set(record.ratedRecordId, record);
            log.push(entry(log.length + 1, record));
          }

          // Export in random batch splits, each batch seeing only itself plus the lookup.
          const sums = new Map<string, InstanceType<typeof LatchDecimal>>();
          let exportedRows = 0;
          let start = 0;
          for (let i = 0; start < log.length; i++) {
            const size = sizes[i % sizes.length] as number;
            const batch = log.slice(start, start + size);
            start += size;
            const previous = await resolvePreviousVersions(batch, async (id) => all.get(id));
            const plan = planBatch({
              entries: batch,
              previous,
              formats: ["jsonl.gz"],
              batchId: batchIdFor((batch[0] as ChangeLogEntry).seq),
            });
            const manifest = JSON.parse(text(manifestFor(plan).bytes)) as BillingManifest;
            exportedRows += manifest.rows;
            expect(manifest.objects.reduce((n, o) => n + o.rows, 0)).toBe(batch.length);
            for (const [currency, t] of Object.entries(manifest.totalsByCurrency)) {
              sums.set(currency, (sums.get(currency) ?? new LatchDecimal(0)).plus(t.costDeltaExact));
            }
          }
          expect(exportedRows).toBe(log.length);

          const expected = new Map<string, InstanceType<typeof LatchDecimal>>();
          for (const r of current.values()) {
            expected.set(r.currency, (expected.get(r.currency) ?? new LatchDecimal(0)).plus(r.total));
          }
          const show = (m: Map<string, InstanceType<typeof LatchDecimal>>) =>
            Object.fromEntries([...m].map(([c, v]) => [c, v.toFixed()]).sort());
          expect(show(sums)).toEqual(show(expected));
        },
      ),
      { numRuns: 200 },
    );
  });
});
