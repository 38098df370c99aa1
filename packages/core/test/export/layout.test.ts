import { describe, expect, it } from "vitest";
import { ExportError, LatchValidationError } from "../../src/errors/index.js";
import {
  batchIdFor,
  buildBillingRows,
  intentKey,
  manifestKey,
  normalizePrefix,
  padSeq,
  partitionRows,
  partKey,
  planBatch,
  validateBatchId,
} from "../../src/export/index.js";
import { entry, rec } from "./helpers.js";

function validationPath(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LatchValidationError);
    return (e as LatchValidationError).issues[0]?.path;
  }
  throw new Error("expected a LatchValidationError");
}

describe("prefix and batch id", () => {
  it("normalises the prefix", () => {
    expect(normalizePrefix(undefined)).toBe("");
    expect(normalizePrefix("")).toBe("");
    expect(normalizePrefix("/")).toBe("");
    expect(normalizePrefix("/billing/prod/")).toBe("billing/prod");
    expect(normalizePrefix("tenant=acme")).toBe("tenant=acme");
  });

  it("rejects unsafe prefixes, naming prefix", () => {
    for (const bad of ["a//b", "a/../b", "./a", "a b", "a\\b", "a/?"]) {
      expect(validationPath(() => normalizePrefix(bad))).toBe("prefix");
    }
  });

  it("validates batch ids, naming batchId", () => {
    expect(validateBatchId("b-0000000000000000000000000000000000000001")).toBe(
      "b-0000000000000000000000000000000000000001",
    );
    expect(validateBatchId("A.b_c-9")).toBe("A.b_c-9");
    for (const bad of ["", "a/b", "a b", "x".repeat(129), "..", "é"]) {
      expect(validationPath(() => validateBatchId(bad))).toBe("batchId");
    }
    expect(validationPath(() => manifestKey("", "../x"))).toBe("batchId");
  });

  it("pads seqs to 40 digits so keys sort, and derives batch ids from the first seq", () => {
    expect(padSeq("42")).toBe("0000000000000000000000000000000000000042");
    expect(padSeq("0042")).toBe("0000000000000000000000000000000000000042");
    expect(padSeq("0")).toBe("0000000000000000000000000000000000000000");
    expect(padSeq("18446744073709551615")).toBe("0000000000000000000018446744073709551615");
    expect(batchIdFor("7")).toBe("b-0000000000000000000000000000000000000007");
    expect(() => padSeq("-1")).toThrow(ExportError);
    expect(() => padSeq("")).toThrow(ExportError);
  });
});

describe("keys", () => {
  it("are Hive-partitioned under the schema id", () => {
    expect(partKey("billing/prod", "2026-03-01", "1", "42", "jsonl.gz")).toBe(
      "billing/prod/latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000001-0000000000000000000000000000000000000042.jsonl.gz",
    );
    expect(partKey("", "2026-03-01", "1", "42", "csv")).toBe(
      "latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000001-0000000000000000000000000000000000000042.csv",
    );
    expect(manifestKey("", "b-1")).toBe("latch.billing-export.v1/_manifests/b-1.json");
    expect(manifestKey("x", "b-1")).toBe("x/latch.billing-export.v1/_manifests/b-1.json");
    expect(intentKey("x", "b-1")).toBe("x/latch.billing-export.v1/_intents/b-1.json");
  });

  it("partition by the UTC day of completedAt, across midnight, with min/max seq per day", () => {
    const at = (requestId: string, completedAt: string) => rec({ requestId, total: "1", completedAt });
    // Cursor order need not be seq order (e.g. Postgres orders by (xid, seq)).
    const entries = [
      entry(12, at("a", "2026-02-28T23:59:59.999Z")),
      entry(10, at("b", "2026-03-01T00:00:00Z")),
      entry(9, at("c", "2026-02-28T23:00:00Z")),
      entry(11, at("d", "2026-03-01T00:00:00.001Z")),
      entry(13, at("e", "2026-03-02T10:00:00Z")),
    ];
    const rows = buildBillingRows(entries, new Map());
    const parts = partitionRows(rows);
    expect(parts.map((p) => [p.dt, p.firstSeq, p.lastSeq, p.rows.map((r) => r.seq)])).toEqual([
      ["2026-02-28", "9", "12", ["12", "9"]],
      ["2026-03-01", "10", "11", ["10", "11"]],
      ["2026-03-02", "13", "13", ["13"]],
    ]);
    const plan = planBatch({
      entries,
      previous: new Map(),
      prefix: "/p/",
      formats: ["csv", "jsonl.gz"],
      batchId: "b-1",
    });
    expect(plan.parts.map((p) => p.key)).toEqual([
      "p/latch.billing-export.v1/dt=2026-02-28/part-0000000000000000000000000000000000000009-0000000000000000000000000000000000000012.jsonl.gz",
      "p/latch.billing-export.v1/dt=2026-02-28/part-0000000000000000000000000000000000000009-0000000000000000000000000000000000000012.csv",
      "p/latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000010-0000000000000000000000000000000000000011.jsonl.gz",
      "p/latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000010-0000000000000000000000000000000000000011.csv",
      "p/latch.billing-export.v1/dt=2026-03-02/part-0000000000000000000000000000000000000013-0000000000000000000000000000000000000013.jsonl.gz",
      "p/latch.billing-export.v1/dt=2026-03-02/part-0000000000000000000000000000000000000013-0000000000000000000000000000000000000013.csv",
    ]);
    expect(plan.parts.map((p) => p.rows)).toEqual([2, 2, 2, 2, 1, 1]);
  });
});
