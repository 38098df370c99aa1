import { LatchValidationError, MemoryRatedRecordStore } from "@latch/core";
import { describeExporter, makeRatedRecord, uniqueId } from "@latch/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ExportProgress, S3Exporter, toParquet } from "../src/index.js";
import { consumeExport } from "./support/consumer.js";
import { allEntries, seedStore, storeTotals } from "./support/dataset.js";
import { duckCountParquet } from "./support/duck.js";
import { startTestS3, type TestS3 } from "./support/s3-server.js";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
});

const ALL_FORMATS = ["jsonl.gz", "csv", "csv.gz", "parquet"] as const;
let prefixes = 0;

describeExporter({
  name: "s3 (in-process S3 server, every format)",
  create: async () => {
    const bucket = await s3.createBucket();
    const prefix = `suite/run-${prefixes++}`;
    const exporter = new S3Exporter({ bucket, prefix, client: s3.client(), formats: [...ALL_FORMATS] });
    return {
      exporter,
      read: {
        list: () => s3.list(bucket, `${prefix}/`),
        get: (key: string) => s3.get(bucket, key),
      },
    };
  },
  countRows: (key, bytes) => {
    if (key.endsWith(".parquet")) return duckCountParquet(bytes);
    throw new Error(`unexpected object ${key}`);
  },
});

describe("S3Exporter.exportSince", () => {
  it("publishes exactly the store's rows and per-currency totals, read back by DuckDB and a plain JSONL reader", async () => {
    const { store, versions } = await seedStore(2_000);
    const bucket = await s3.createBucket();
    const exporter = new S3Exporter({
      bucket,
      prefix: "billing/prod",
      client: s3.client(),
      formats: [...ALL_FORMATS],
    });
    const seen: ExportProgress[] = [];
    const result = await exporter.exportSince(store, {
      cursorName: "billing",
      batchSize: 300,
      progress: (p) => seen.push(p),
    });
    expect(result.rows).toBe(versions);
    expect(result.batches).toBe(Math.ceil(versions / 300));
    expect(seen.map((p) => p.rows).at(-1)).toBe(versions);
    expect(seen.every((p, i) => i === 0 || p.rows > (seen[i - 1] as ExportProgress).rows)).toBe(true);

    const consumed = await consumeExport(s3, bucket, "billing/prod");
    expect(consumed.manifests).toBe(result.batches);
    // Every version exactly once, in every format.
    const expectedIds = (await allEntries(store)).map((e) => e.record.ratedRecordId).sort();
    expect(expectedIds).toHaveLength(versions);
    const totals = await storeTotals(store);
    expect(totals.size).toBe(2);
    for (const format of ALL_FORMATS) {
      const rows = consumed.rows.get(format) ?? [];
      expect(rows.map((r) => r.rated_record_id).sort(), format).toEqual(expectedIds);
      // Per-currency totals of cost_delta, summed by DuckDB as decimals, equal the store's report.
      expect(consumed.totals.get(format), format).toEqual(totals);
    }
    expect(consumed.manifestTotals).toEqual(totals);
    // Typed Parquet columns round-trip: integers and timestamps.
    const byId = new Map((consumed.rows.get("jsonl.gz") ?? []).map((r) => [r.rated_record_id, r]));
    for (const row of consumed.rows.get("parquet") ?? []) {
      const j = byId.get(row.rated_record_id);
      expect(row.input_tokens).toBe(j?.input_tokens);
      expect(row.version).toBe(j?.version);
      expect(row.completed_at).toBe(j?.completed_at.slice(0, 19));
    }
    // The attributes column is the same text in every format, sorted JSON of the observation's.
    const records = new Map((await allEntries(store)).map((e) => [e.record.ratedRecordId, e.record]));
    for (const format of ALL_FORMATS) {
      for (const row of consumed.rows.get(format) ?? []) {
        const attributes = records.get(row.rated_record_id)?.observation.attributes;
        expect(row.attributes, format).toBe(
          attributes === undefined
            ? "{}"
            : `{"provider_response_id":"${attributes.provider_response_id}","team":"${attributes.team}"}`,
        );
      }
    }

    // The cursor moved past everything: a second run exports nothing.
    const again = await exporter.exportSince(store, { cursorName: "billing", progress: false });
    expect(again).toEqual({ batches: 0, rows: 0, bytes: 0, keys: [] });
  });

  it("exports what was added since the cursor, and a new cursor name starts from the beginning", async () => {
    const { store, versions } = await seedStore(250);
    const bucket = await s3.createBucket();
    const exporter = new S3Exporter({ bucket, client: s3.client() });
    expect(
      (await exporter.exportSince(store, { cursorName: "a", batchSize: 100, progress: false })).rows,
    ).toBe(versions);
    const more = await seedStore(40, store);
    expect(
      (await exporter.exportSince(store, { cursorName: "a", batchSize: 100, progress: false })).rows,
    ).toBe(more.versions);
    // Another consumer re-reads the whole log; its batches start where the first's did, so
    // they are the same objects (already there): nothing is duplicated downstream.
    const other = await exporter.exportSince(store, { cursorName: "b", batchSize: 100, progress: false });
    expect(other.rows).toBe(versions + more.versions);
    const consumed = await consumeExport(s3, bucket, "");
    const ids = (consumed.rows.get("jsonl.gz") ?? []).map((r) => r.rated_record_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(versions + more.versions);
  });

  it("builds its own client from endpoint, region, credentials and forcePathStyle", async () => {
    const { store, versions } = await seedStore(40);
    const bucket = await s3.createBucket();
    const exporter = new S3Exporter({
      bucket,
      endpoint: s3.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      forcePathStyle: true,
    });
    try {
      expect((await exporter.exportSince(store, { cursorName: "own-client", progress: false })).rows).toBe(
        versions,
      );
    } finally {
      exporter.client.destroy();
    }
  });

  it("fails with connection (retryable) when nothing listens at the endpoint", async () => {
    const { store } = await seedStore(5);
    const exporter = new S3Exporter({
      bucket: "latch-nobody-home",
      endpoint: "http://127.0.0.1:9", // discard port: connection refused
      credentials: { accessKeyId: "x", secretAccessKey: "y" },
      forcePathStyle: true,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    const error = await exporter.exportSince(store, { cursorName: "c", progress: false }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; kind?: string; isRetryable?: boolean },
    );
    exporter.client.destroy();
    expect(error?.code).toBe("export_failed");
    expect(error?.kind).toBe("connection");
    expect(error?.isRetryable).toBe(true);
    expect(await store.getCursor("c")).toBeUndefined();
  });

  it("validates its options, naming the field", () => {
    const field = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(LatchValidationError);
        return (e as LatchValidationError).issues[0]?.path;
      }
      return "no error";
    };
    const client = s3.client();
    expect(field(() => new S3Exporter({ bucket: "Bad_Bucket", client }))).toBe("bucket");
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", prefix: "a/../b", client }))).toBe("prefix");
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", formats: ["xlsx" as "csv"], client }))).toBe(
      "formats.0",
    );
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", partSizeBytes: 1024, client }))).toBe(
      "partSizeBytes",
    );
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", retry: { maxAttempts: 0 }, client }))).toBe(
      "retry.maxAttempts",
    );
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", endpoint: "not a url" }))).toBe("endpoint");
    expect(field(() => new S3Exporter({ bucket: "ok-bucket", client }))).toBe("no error");
  });

  it("writes Parquet with typed columns that DuckDB reads exactly", async () => {
    const { store } = await seedStore(30);
    const rows = (await store.listSince(undefined, 1_000)).items;
    const { buildBillingRows } = await import("@latch/core/export");
    const billing = buildBillingRows(rows.slice(0, 30), new Map());
    expect(await duckCountParquet(toParquet(billing))).toBe(30);
    // Same rows ⇒ same bytes (deterministic, so a rerun's 412 check finds equal objects).
    expect(Buffer.from(toParquet(billing)).equals(Buffer.from(toParquet(billing)))).toBe(true);
  });
});

describe("the attributes column", () => {
  it("round-trips hostile attribute values exactly through JSONL, CSV (DuckDB) and Parquet (DuckDB)", async () => {
    // At the observation schema's bounds: 64 keys, a 64-byte key, 256-byte values.
    const hostile: Record<string, string> = {
      provider_response_id: "chatcmpl-1",
      team: "a",
      quotes: 'say "hi" \\"escaped\\" \'single\'',
      commas: "a,b,,c,",
      newlines: "line 1\nline 2\r\nline 3\r",
      formula: '=HYPERLINK("http://evil.example","click")',
      plus: "+cmd|' /C calc'!A0",
      minus: "-2+3",
      at: "@SUM(1+1)",
      tab: "\tlead",
      control: "bell\u0007 esc\u001b del\u007f",
      "non-ASCII": "Zürich · Москва · 東京 · عربي",
      emoji: "🧾👩🏽‍💻🇯🇵 ✓",
      "=starts like a formula": "key too",
      [`k${"é".repeat(31)}x`]: "a 64-byte key",
      long: "🧾".repeat(64),
    };
    for (let i = Object.keys(hostile).length; i < 64; i++)
      hostile[`pad-${String(i).padStart(2, "0")}`] = `${i}`;
    expect(Object.keys(hostile)).toHaveLength(64);
    expect(Buffer.byteLength(hostile.long as string)).toBe(256);
    const store = new MemoryRatedRecordStore();
    const plain = makeRatedRecord({ observation: { eventId: uniqueId("plain") } });
    const labelled = makeRatedRecord({ observation: { eventId: uniqueId("hostile"), attributes: hostile } });
    await store.putMany([plain, labelled]);
    const bucket = await s3.createBucket();
    const exporter = new S3Exporter({
      bucket,
      prefix: "attrs",
      client: s3.client(),
      formats: [...ALL_FORMATS],
    });
    expect((await exporter.exportSince(store, { cursorName: "attrs", progress: false })).rows).toBe(2);

    const consumed = await consumeExport(s3, bucket, "attrs");
    const sorted = Object.keys(hostile).sort();
    const expected = `{${sorted.map((k) => `${JSON.stringify(k)}:${JSON.stringify(hostile[k])}`).join(",")}}`;
    for (const format of ALL_FORMATS) {
      const byId = new Map((consumed.rows.get(format) ?? []).map((r) => [r.rated_record_id, r.attributes]));
      expect(byId.size, format).toBe(2);
      expect(byId.get(plain.ratedRecordId), format).toBe("{}");
      // The very text, parsed back by DuckDB's CSV and Parquet readers and by JSON.parse.
      expect(byId.get(labelled.ratedRecordId), format).toBe(expected);
      const parsed = JSON.parse(byId.get(labelled.ratedRecordId) as string) as Record<string, string>;
      expect(parsed, format).toEqual(hostile);
      expect(Object.keys(parsed), format).toEqual(sorted);
    }
  });
});

describe("MemoryRatedRecordStore sanity for these tests", () => {
  it("seeds versions with corrections across batches", async () => {
    const { store, versions } = await seedStore(70, new MemoryRatedRecordStore());
    expect(versions).toBe(80);
    expect((await store.listSince(undefined, 1_000)).items).toHaveLength(80);
  });
});
