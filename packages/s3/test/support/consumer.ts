/**
 * An independent downstream consumer of an export, as a billing pipeline would be: it lists
 * the manifests with raw S3 calls, checks every listed object's sha256 and row count, and reads
 * the rows with other software — DuckDB for Parquet and CSV (gzipped or not), plain gunzip +
 * JSON.parse for JSONL. Nothing here uses @latch/s3 or @latch/core's export code.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import type { TestS3 } from "./s3-server.js";

export interface ConsumedRow {
  rated_record_id: string;
  tenant_id: string;
  currency: string;
  cost: string;
  cost_delta: string;
  version: string;
  input_tokens: string;
  completed_at: string;
  /** The `attributes` column: JSON text, compared as text across formats. */
  attributes: string;
}

export interface Consumed {
  manifests: number;
  /** Rows per format, read from every object the manifests list. */
  rows: Map<string, ConsumedRow[]>;
  /** Per format, currency → SUM(cost_delta) computed by DuckDB (JSONL rows are loaded into DuckDB too). */
  totals: Map<string, Map<string, string>>;
  /** Per-currency totals the manifests state (summed by DuckDB as decimals). */
  manifestTotals: Map<string, string>;
}

const COLUMNS =
  "rated_record_id, tenant_id, currency, cost, cost_delta, version::VARCHAR AS version, input_tokens::VARCHAR AS input_tokens, completed_at, attributes";

/** A decimal string without trailing fractional zeros (DuckDB prints DECIMAL(38,18) with all 18). */
export function trimDecimal(text: string): string {
  if (!text.includes(".")) return text === "-0" ? "0" : text;
  const trimmed = text.replace(/0+$/, "").replace(/\.$/, "");
  return trimmed === "-0" ? "0" : trimmed;
}

export async function consumeExport(s3: TestS3, bucket: string, prefix: string): Promise<Consumed> {
  const root = prefix === "" ? "latch.billing-export.v1/" : `${prefix}/latch.billing-export.v1/`;
  const manifestKeys = (await s3.list(bucket, `${root}_manifests/`)).filter((k) => k.endsWith(".json"));
  const dir = await mkdtemp(join(tmpdir(), "latch-consumer-"));
  const files = new Map<string, string[]>();
  const jsonl: ConsumedRow[] = [];
  const manifestTotals: Array<{ currency: string; exact: string }> = [];
  try {
    let n = 0;
    for (const key of manifestKeys) {
      const bytes = await s3.get(bucket, key);
      if (bytes === undefined) throw new Error(`manifest ${key} vanished`);
      const manifest = JSON.parse(Buffer.from(bytes).toString("utf8")) as {
        objects: Array<{ key: string; format: string; rows: number; sha256: string }>;
        totalsByCurrency: Record<string, { costDeltaExact: string }>;
      };
      for (const [currency, t] of Object.entries(manifest.totalsByCurrency)) {
        manifestTotals.push({ currency, exact: t.costDeltaExact });
      }
      for (const object of manifest.objects) {
        const data = await s3.get(bucket, object.key);
        if (data === undefined) throw new Error(`listed object ${object.key} is missing`);
        const sha = createHash("sha256").update(data).digest("hex");
        if (sha !== object.sha256) throw new Error(`sha256 of ${object.key} does not match its manifest`);
        if (object.format === "jsonl.gz") {
          const lines = gunzipSync(data)
            .toString("utf8")
            .split("\n")
            .filter((l) => l !== "");
          if (lines.length !== object.rows)
            throw new Error(`${object.key}: ${lines.length} rows, manifest says ${object.rows}`);
          for (const line of lines) {
            const r = JSON.parse(line) as Record<string, unknown>;
            jsonl.push({
              rated_record_id: String(r.rated_record_id),
              tenant_id: String(r.tenant_id),
              currency: String(r.currency),
              cost: String(r.cost),
              cost_delta: String(r.cost_delta),
              version: String(r.version),
              input_tokens: String(r.input_tokens),
              completed_at: String(r.completed_at),
              attributes: String(r.attributes),
            });
          }
          continue;
        }
        const ext = object.format === "csv.gz" ? "csv.gz" : object.format;
        const file = join(dir, `${n++}.${ext}`);
        await writeFile(file, data);
        const list = files.get(object.format) ?? [];
        list.push(file);
        files.set(object.format, list);
      }
    }

    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    const rows = new Map<string, ConsumedRow[]>();
    const totals = new Map<string, Map<string, string>>();
    const sumBy = async (relation: string): Promise<Map<string, string>> => {
      const result = await c.runAndReadAll(
        `SELECT currency, SUM(CAST(cost_delta AS DECIMAL(38, 18)))::VARCHAR AS total FROM ${relation} GROUP BY currency`,
      );
      return new Map(
        (result.getRowObjectsJson() as Array<{ currency: string; total: string }>).map((r) => [
          r.currency,
          trimDecimal(r.total),
        ]),
      );
    };
    if (jsonl.length > 0) {
      rows.set("jsonl.gz", jsonl);
      await c.run("CREATE TABLE jsonl_rows (currency VARCHAR, cost_delta VARCHAR)");
      const appender = await c.createAppender("jsonl_rows");
      for (const r of jsonl) {
        appender.appendVarchar(r.currency);
        appender.appendVarchar(r.cost_delta);
        appender.endRow();
      }
      appender.closeSync();
      totals.set("jsonl.gz", await sumBy("jsonl_rows"));
    }
    for (const [format, list] of files) {
      const quoted = `[${list.map((f) => `'${f}'`).join(", ")}]`;
      const relation =
        format === "parquet"
          ? `read_parquet(${quoted})`
          : `read_csv(${quoted}, header = true, all_varchar = true, quote = '"', escape = '"')`;
      const result = await c.runAndReadAll(
        format === "parquet"
          ? `SELECT ${COLUMNS.replace("completed_at", "strftime(completed_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') AS completed_at")} FROM ${relation}`
          : `SELECT ${COLUMNS} FROM ${relation}`,
      );
      rows.set(format, result.getRowObjectsJson() as unknown as ConsumedRow[]);
      totals.set(format, await sumBy(relation));
    }
    await c.run("CREATE TABLE manifest_totals (currency VARCHAR, exact VARCHAR)");
    const appender = await c.createAppender("manifest_totals");
    for (const t of manifestTotals) {
      appender.appendVarchar(t.currency);
      appender.appendVarchar(t.exact);
      appender.endRow();
    }
    appender.closeSync();
    const summed = await c.runAndReadAll(
      "SELECT currency, SUM(CAST(exact AS DECIMAL(38, 18)))::VARCHAR AS total FROM manifest_totals GROUP BY currency",
    );
    const manifestSums = new Map(
      (summed.getRowObjectsJson() as Array<{ currency: string; total: string }>).map((r) => [
        r.currency,
        trimDecimal(r.total),
      ]),
    );
    c.closeSync();
    db.closeSync();
    return { manifests: manifestKeys.length, rows, totals, manifestTotals: manifestSums };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
