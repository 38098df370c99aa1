import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { LatchDecimal, type RatedUsageRecord } from "@latch/core";
import type { ChangeLogEntry, RatedRecordExporter } from "@latch/core/adapter";
import type { ExportError } from "@latch/core/errors";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { abortedSignal, expectLatchError } from "../expect-errors.js";
import { makeCorrection, makeRatedRecord, uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";

/** An independent raw reader of what the exporter wrote (a folder walk, a signed S3 GET, …). */
export interface ExportReader {
  /** Every object key the exporter under test has written (only its own prefix or folder). */
  list(): Promise<string[]>;
  /** An object's exact bytes, or undefined when absent. */
  get(key: string): Promise<Uint8Array | undefined>;
}

export interface ExporterSuiteOptions
  extends SuiteOptions<{ exporter: RatedRecordExporter; read: ExportReader }> {
  /**
   * A fresh exporter writing under its own empty prefix (or folder), with a raw reader of
   * that same place. Called before every test.
   */
  create: () =>
    | Promise<{ exporter: RatedRecordExporter; read: ExportReader }>
    | { exporter: RatedRecordExporter; read: ExportReader };
  /**
   * Counts the data rows of an object in a format the suite cannot read itself (it reads
   * `.jsonl`, `.jsonl.gz`, `.csv` and `.csv.gz`), e.g. Parquet. An object the suite cannot count fails
   * the test.
   */
  countRows?: (key: string, bytes: Uint8Array) => number | Promise<number>;
}

/** What the suite relies on in a `latch.billing-export.v1` manifest (other fields are allowed). */
const ManifestSchema = z.looseObject({
  schema: z.literal("latch.billing-export.v1"),
  batchId: z.string(),
  rows: z.number().int(),
  objects: z
    .array(
      z.looseObject({
        key: z.string(),
        rows: z.number().int().nonnegative(),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
      }),
    )
    .min(1),
  totalsByCurrency: z.record(z.string(), z.looseObject({ costDeltaExact: z.string() })),
});
type Manifest = z.output<typeof ManifestSchema>;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Records in an RFC 4180 CSV text (quoted fields may hold commas, quotes and newlines). */
function csvRecords(text: string): number {
  let records = 0;
  let inQuotes = false;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"' && text[i + 1] === '"') i++;
      else if (c === '"') inQuotes = false;
    } else if (c === '"') {
      inQuotes = true;
      fieldStarted = true;
    } else if (c === "\n" || (c === "\r" && text[i + 1] === "\n")) {
      if (c === "\r") i++;
      records++;
      fieldStarted = false;
    } else {
      fieldStarted = true;
    }
  }
  return fieldStarted ? records + 1 : records;
}

/** The JSON lines of a `.jsonl` or `.jsonl.gz` object. */
function jsonLines(key: string, bytes: Uint8Array): unknown[] {
  const text = utf8.decode(key.endsWith(".gz") ? gunzipSync(bytes) : bytes);
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as unknown);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * The `RatedRecordExporter` contract as a vitest suite, checked through an independent raw
 * reader: a batch writes parts and a manifest last; every part the manifest lists exists with
 * its sha256 and row count; a rerun writes nothing new and says `alreadyExported`; other
 * content under an existing key is `ExportError` `invalid_data` and replaces nothing. Every
 * test always runs; none can be switched off.
 *
 * @example
 * exporterSuite({
 *   create: async () => {
 *     const dir = await mkdtemp(join(tmpdir(), "latch-export-"));
 *     return { exporter: new FileExporter({ directory: dir }), read: folderReader(dir) };
 *   },
 * });
 */
export function exporterSuite(options: ExporterSuiteOptions): ConformanceSuite {
  return { name: "RatedRecordExporter", register: (title) => exporterTests(title, options) };
}

/**
 * `exporterSuite` registered on its own, titled `RatedRecordExporter: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [exporterSuite(options)] })`.
 */
export function describeExporter(options: ExporterSuiteOptions & DescribeOptions): void {
  describeSuite(exporterSuite(options), options);
}

function exporterTests(title: string, options: ExporterSuiteOptions): void {
  describe(title, () => {
    let exporter: RatedRecordExporter;
    let read: ExportReader;
    let tenantId: string;

    beforeEach(async () => {
      ({ exporter, read } = await options.create());
      tenantId = uniqueId("tenant");
    });

    /** A realistic batch over two UTC days and two currencies, with a correction and its original. */
    function makeBatch(firstSeq: number, variant = 0): ChangeLogEntry[] {
      const at = (day: number, time: string) => ({
        startedAt: `2026-03-0${day}T${time}Z`,
        completedAt: `2026-03-0${day}T${time}Z`,
      });
      const observation = (n: number, day: number, time: string) => ({
        eventId: `${tenantId}-${n}:0:openai`,
        subject: { tenantId, projectId: "p-1" },
        timing: at(day, time),
        meters: { input_tokens: 1_000 + n * 37 + variant, output_tokens: 200 + n },
      });
      const a1 = makeRatedRecord({ observation: observation(1, 1, "09:00:00") });
      const b1 = makeRatedRecord({ observation: observation(2, 1, "10:30:00"), currency: "EUR" });
      const c1 = makeRatedRecord({ observation: observation(3, 2, "08:15:00") });
      const a2 = makeCorrection(a1, { input_tokens: 500 + variant, output_tokens: 90 });
      return [a1, b1, c1, a2].map((record, i) => ({ seq: String(firstSeq + i), record }));
    }

    async function snapshot(): Promise<Map<string, string>> {
      const objects = new Map<string, string>();
      for (const key of (await read.list()).sort()) {
        const bytes = await read.get(key);
        expect(bytes, `listed object ${key} can be read`).toBeDefined();
        objects.set(key, sha256Hex(bytes as Uint8Array));
      }
      return objects;
    }

    async function countRows(key: string, bytes: Uint8Array): Promise<number> {
      if (/\.jsonl(\.gz)?$/.test(key)) return jsonLines(key, bytes).length;
      if (key.endsWith(".csv")) return csvRecords(utf8.decode(bytes)) - 1; // minus the header row
      if (key.endsWith(".csv.gz")) return csvRecords(utf8.decode(gunzipSync(bytes))) - 1;
      if (options.countRows === undefined) {
        throw new Error(`the suite cannot count the rows of ${key}: pass countRows for this format`);
      }
      return options.countRows(key, bytes);
    }

    async function readManifest(key: string): Promise<Manifest> {
      const bytes = await read.get(key);
      expect(bytes, `manifest ${key} exists`).toBeDefined();
      return ManifestSchema.parse(JSON.parse(utf8.decode(bytes as Uint8Array)));
    }

    it("writes a batch's parts and its manifest last; every listed part matches its sha256 and row count", async () => {
      const batch = makeBatch(101);
      const batchId = uniqueId("batch");
      const result = await exporter.export(batch, { batchId });
      expect(result.rows).toBe(batch.length);
      expect(result.alreadyExported).toBe(false);

      const manifestKey = result.keys[result.keys.length - 1] as string;
      expect(manifestKey).toContain("/_manifests/");
      expect(manifestKey).toContain(batchId);
      expect(result.keys.filter((k) => k.includes("/_manifests/"))).toEqual([manifestKey]);
      const listed = await read.list();
      for (const key of result.keys) expect(listed).toContain(key);

      const manifest = await readManifest(manifestKey);
      expect(manifest.batchId).toBe(batchId);
      expect(manifest.rows).toBe(batch.length);
      expect(manifest.objects.map((o) => o.key).sort()).toEqual(result.keys.slice(0, -1).sort());
      // Two UTC days ⇒ at least two parts; every format holds every row once.
      expect(manifest.objects.length).toBeGreaterThanOrEqual(2);
      const rowsByFormat = new Map<string, number>();
      for (const object of manifest.objects) {
        const bytes = await read.get(object.key);
        expect(bytes, `part ${object.key} exists`).toBeDefined();
        expect(sha256Hex(bytes as Uint8Array)).toBe(object.sha256);
        expect(await countRows(object.key, bytes as Uint8Array)).toBe(object.rows);
        const format = object.key.slice(object.key.lastIndexOf("/") + 1).replace(/^[^.]*\./, "");
        rowsByFormat.set(format, (rowsByFormat.get(format) ?? 0) + object.rows);
        expect(object.key).toMatch(/\/dt=2026-03-0[12]\//);
      }
      for (const [format, rows] of rowsByFormat) expect(rows, `rows in ${format} parts`).toBe(batch.length);

      // JSONL parts hold each version of the batch exactly once.
      const jsonlKeys = manifest.objects.map((o) => o.key).filter((k) => /\.jsonl(\.gz)?$/.test(k));
      if (jsonlKeys.length > 0) {
        const ids: string[] = [];
        for (const key of jsonlKeys) {
          for (const row of jsonLines(key, (await read.get(key)) as Uint8Array)) {
            ids.push(String((row as { rated_record_id?: unknown }).rated_record_id));
          }
        }
        expect(ids.sort()).toEqual(batch.map((e) => e.record.ratedRecordId).sort());
      }

      // Per currency, the manifest's cost deltas sum to the batch's current totals (never across currencies).
      const current = new Map<string, RatedUsageRecord>();
      for (const { record } of batch) current.set(record.eventId, record);
      const expected = new Map<string, LatchDecimal>();
      for (const r of current.values()) {
        expected.set(r.currency, (expected.get(r.currency) ?? new LatchDecimal(0)).plus(r.total));
      }
      expect(Object.keys(manifest.totalsByCurrency).sort()).toEqual([...expected.keys()].sort());
      for (const [currency, sum] of expected) {
        const exact = manifest.totalsByCurrency[currency]?.costDeltaExact ?? "NaN";
        expect(new LatchDecimal(exact).eq(sum), `${currency}: ${exact} = ${sum.toFixed()}`).toBe(true);
      }
    });

    it("writes nothing new when the same batch is exported again, and says alreadyExported", async () => {
      const batch = makeBatch(201);
      const batchId = uniqueId("batch");
      const first = await exporter.export(batch, { batchId });
      const before = await snapshot();
      const again = await exporter.export(makeBatch(201), { batchId });
      expect(again.alreadyExported).toBe(true);
      expect(again.keys).toEqual(first.keys);
      expect(again.rows).toBe(first.rows);
      expect(await snapshot()).toEqual(before);
    });

    it("rejects different content under an existing key as invalid_data and replaces nothing", async () => {
      const batchId = uniqueId("batch");
      await exporter.export(makeBatch(301), { batchId });
      const before = await snapshot();
      // Same seqs, days and batch id (so the same keys), different meters (so different bytes).
      const error = await expectLatchError(exporter.export(makeBatch(301, 1), { batchId }), "export_failed");
      expect(error.name).toBe("ExportError");
      expect((error as ExportError).kind).toBe("invalid_data");
      expect(await snapshot()).toEqual(before);
    });

    it("rejects an aborted export and writes no manifest", async () => {
      await expect(
        exporter.export(makeBatch(401), { batchId: uniqueId("batch") }, abortedSignal()),
      ).rejects.toThrow();
      expect((await read.list()).filter((k) => k.includes("/_manifests/"))).toEqual([]);
    });
  });
}
