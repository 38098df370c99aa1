/**
 * The README's reader queries read only published batches: run by DuckDB while a batch is
 * half-written (its parts on disk, its manifest not yet), they see exactly the batches whose
 * manifests exist — a plain glob over the parts would also count the half-written batch.
 * The export is written by `FileExporter` (same layout as the bucket), read with local paths.
 */
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { FileExporter, sumDecimals } from "@latch/core";
import { type BillingManifest, exportPending } from "@latch/core/export";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toParquet } from "../src/index.js";
import { seedStore } from "./support/dataset.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "latch-reader-query-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The README's queries, on the export under `root` (a bucket URL there, a folder here). */
function readerQueries(root: string) {
  const published = `published AS (
    SELECT unnest(objects).key AS key
    FROM read_json('${root}/latch.billing-export.v1/_manifests/*.json')
  )`;
  return {
    jsonl: `WITH ${published}
      SELECT count(*)::INTEGER AS n, sum(CAST(cost_delta AS DECIMAL(38, 18)))::VARCHAR AS total
      FROM read_json('${root}/latch.billing-export.v1/dt=*/*.jsonl.gz', filename = true, union_by_name = true)
      WHERE filename IN (SELECT '${root}/' || key FROM published)`,
    parquet: `WITH ${published}
      SELECT count(*)::INTEGER AS n, sum(CAST(cost_delta AS DECIMAL(38, 18)))::VARCHAR AS total
      FROM read_parquet('${root}/latch.billing-export.v1/dt=*/*.parquet', filename = true, union_by_name = true)
      WHERE filename IN (SELECT '${root}/' || key FROM published)`,
    naive: `SELECT count(*)::INTEGER AS n
      FROM read_json('${root}/latch.billing-export.v1/dt=*/*.jsonl.gz')`,
    /** A label of the `attributes` column, over parts written before and after it existed. */
    labels: (format: "jsonl" | "parquet") => `WITH ${published}
      SELECT count(*)::INTEGER AS n, count(json_extract_string(attributes, '$.team'))::INTEGER AS labelled
      FROM ${format === "jsonl" ? "read_json" : "read_parquet"}('${root}/latch.billing-export.v1/dt=*/*.${format === "jsonl" ? "jsonl.gz" : "parquet"}', filename = true, union_by_name = true)
      WHERE filename IN (SELECT '${root}/' || key FROM published)`,
  };
}

async function query(sql: string): Promise<{ n: number; total?: string }> {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjects()[0] as { n: number; total?: string };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function manifests(): Promise<BillingManifest[]> {
  const folder = join(dir, "latch.billing-export.v1", "_manifests");
  const names = (await fsp.readdir(folder)).filter((n) => n.endsWith(".json"));
  return Promise.all(names.map(async (n) => JSON.parse(await fsp.readFile(join(folder, n), "utf8"))));
}

/** Exact sum of the published batches' per-currency totals (every currency), trimmed. */
const publishedTotal = (ms: BillingManifest[]) =>
  sumDecimals(ms.flatMap((m) => Object.values(m.totalsByCurrency).map((t) => t.costDeltaExact)));

const trim = (decimal: string | undefined) => sumDecimals([decimal ?? "0"]);

describe("the README's reader queries", () => {
  it(
    "see only published batches while a batch is half-written, and every batch once it is published",
    {
      timeout: 120_000,
    },
    async () => {
      const { store, versions } = await seedStore(300, undefined, { days: 3 });
      const formats = ["jsonl.gz", "parquet"] as const;
      const encoders = { parquet: toParquet };
      // The first batch is published; the second is interrupted after its parts, before its
      // manifest (the process killed there).
      let manifestsLinked = 0;
      const halfway = new FileExporter({
        directory: dir,
        formats,
        encoders,
        fs: {
          ...fsp,
          link: async (from, to) => {
            if (String(to).includes("_manifests") && ++manifestsLinked > 1)
              throw new Error("killed before the manifest");
            await fsp.link(from, to);
          },
        },
      });
      await expect(exportPending({ store, exporter: halfway, batchSize: 200 })).rejects.toThrow();

      const q = readerQueries(dir);
      const published = await manifests();
      expect(published.map((m) => m.rows)).toEqual([200]);
      // The half-written batch's parts are on disk: a plain glob counts them.
      expect((await query(q.naive)).n).toBe(versions);
      for (const sql of [q.jsonl, q.parquet]) {
        const seen = await query(sql);
        expect(seen.n).toBe(200);
        expect(trim(seen.total)).toBe(publishedTotal(published));
      }

      // The rerun publishes the batch; the queries then see every version once.
      await exportPending({
        store,
        exporter: new FileExporter({ directory: dir, formats, encoders }),
        batchSize: 200,
      });
      const all = await manifests();
      expect(all.reduce((n, m) => n + m.rows, 0)).toBe(versions);
      for (const sql of [q.jsonl, q.parquet]) {
        const seen = await query(sql);
        expect(seen.n).toBe(versions);
        expect(trim(seen.total)).toBe(publishedTotal(all));
      }
    },
  );

  it(
    "read the attributes column across parts written before it existed (union_by_name)",
    { timeout: 60_000 },
    async () => {
      // Three days: the calls of days 1 and 3 are the labelled ones (every other call).
      const { store, versions } = await seedStore(40, undefined, { days: 3 });
      await exportPending({
        store,
        exporter: new FileExporter({
          directory: dir,
          formats: ["jsonl.gz", "parquet"],
          encoders: { parquet: toParquet },
        }),
        batchSize: 1000,
      });
      // One day's parts as the previous version wrote them: no attributes column.
      const root = join(dir, "latch.billing-export.v1");
      const days = (await fsp.readdir(root)).filter((d) => d.startsWith("dt=")).sort();
      expect(days.length).toBe(3);
      const oldDay = join(root, days[0] as string);
      const db = await DuckDBInstance.create(":memory:");
      const c = await db.connect();
      try {
        for (const name of await fsp.readdir(oldDay)) {
          const file = join(oldDay, name);
          const options = name.endsWith(".parquet") ? "FORMAT parquet" : "FORMAT json, COMPRESSION gzip";
          const reader = name.endsWith(".parquet") ? "read_parquet" : "read_json";
          await c.run(
            `COPY (SELECT * EXCLUDE (attributes) FROM ${reader}('${file}')) TO '${file}.old' (${options})`,
          );
          await fsp.rename(`${file}.old`, file);
        }
        // Without union_by_name DuckDB takes the columns of the first file: an old one has no
        // `attributes` (a new one first: the old files fail "schema mismatch in glob").
        await expect(
          c.run(
            `SELECT json_extract_string(attributes, '$.team') FROM read_parquet('${root}/dt=*/*.parquet')`,
          ),
        ).rejects.toThrow(/attributes/);
      } finally {
        c.closeSync();
        db.closeSync();
      }
      const q = readerQueries(dir);
      const labelledAfter = (await manifests()).length > 0;
      expect(labelledAfter).toBe(true);
      for (const format of ["jsonl", "parquet"] as const) {
        const seen = await query(q.labels(format));
        expect(seen.n).toBe(versions);
        const { labelled } = seen as unknown as { labelled: number };
        expect(labelled).toBeGreaterThan(0);
        expect(labelled).toBeLessThan(versions);
      }
      for (const sql of [q.jsonl, q.parquet]) expect((await query(sql)).n).toBe(versions);
    },
  );
});
