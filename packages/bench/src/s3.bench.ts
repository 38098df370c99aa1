/**
 * `@latch/s3` export throughput, against an S3-compatible server in its own process on loopback
 * (`@20minutes/s3rver`; S3 is remote in production, so it does not share our CPU), the same change log (`syntheticChangeLog`, 100,000 rows in
 * pages of 10,000) through three writers, interleaved, best of 3:
 *
 * - Latch: `S3Exporter.exportSince`, JSONL.gz — validated flat rows, day partitions, intent
 *   marker, create-only PUTs, sha256 manifest, cursor saved after each batch.
 * - naive: what a hand-written exporter does with the same rows (the same 43 columns) —
 *   flatten each record without checks, `JSON.stringify`, gzip, one `PutObject` per page; no
 *   validation, day partitions, manifest, checksums, conditional writes or retries.
 *   Target: Latch ≥ 70% of its rows/s.
 * - raw PutObject: the naive run's gzipped bodies PUT again as they are — the server and
 *   network ceiling, to show where the time goes.
 *
 * Run: `tsx --conditions=dev-source src/s3.bench.ts` (BENCH_S3_ROWS to change the row count).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { RatedUsageRecord } from "@latch/core";
import { S3Exporter } from "@latch/s3";
import { syntheticChangeLog } from "@latch/testkit";
import { pct, reportRow } from "./report.js";

const ROWS = Number(process.env.BENCH_S3_ROWS ?? 100_000);
const PAGE = 10_000;
const ROUNDS = 3;

/**
 * The same 43 columns a hand-written exporter would build, with no validation and
 * `Math.round(Number(total) * 100)` for the minor units (what naive code does; Latch rounds the
 * exact decimal half-even).
 */
function naiveRow(r: RatedUsageRecord, seq: string) {
  const o = r.observation;
  const s = o.subject;
  const m = o.meters;
  return {
    schema: "latch.billing-export.v1",
    rated_record_id: r.ratedRecordId,
    event_id: r.eventId,
    version: r.version,
    supersedes: r.supersedes ?? "",
    tenant_id: s.tenantId,
    org_id: s.orgId ?? "",
    project_id: s.projectId ?? "",
    api_key_id: s.apiKeyId ?? "",
    end_user_id: s.endUserId ?? "",
    feature: s.feature ?? "",
    provider: o.provider?.providerId ?? "",
    model: o.model.billableModel,
    model_tier: o.model.tier ?? "",
    vendor: o.model.vendor ?? "",
    region: o.model.region ?? "",
    input_tokens: m.input_tokens ?? 0,
    cached_input_tokens: m.cached_input_tokens ?? 0,
    cache_write_tokens: m.cache_write_tokens ?? 0,
    cache_write_1h_tokens: m.cache_write_1h_tokens ?? 0,
    output_tokens: m.output_tokens ?? 0,
    reasoning_tokens: m.reasoning_tokens ?? 0,
    audio_input_tokens: m.audio_input_tokens ?? 0,
    audio_output_tokens: m.audio_output_tokens ?? 0,
    image_count: m.image_count ?? 0,
    image_input_tokens: m.image_input_tokens ?? 0,
    image_output_tokens: m.image_output_tokens ?? 0,
    web_search_requests: m.web_search_requests ?? 0,
    web_fetch_requests: m.web_fetch_requests ?? 0,
    cached_audio_input_tokens: m.cached_audio_input_tokens ?? 0,
    custom_meters: "{}",
    cost: r.total,
    cost_delta: r.total,
    cost_minor_units: String(Math.round(Number(r.total) * 100)),
    currency: r.currency,
    snapshot_id: r.snapshotId,
    source: o.source.kind,
    outcome: o.outcome.kind,
    started_at: o.timing.startedAt,
    completed_at: o.timing.completedAt,
    rated_at: r.ratedAt,
    seq,
    attributes: JSON.stringify(o.attributes ?? {}),
  };
}

async function main(): Promise<void> {
  const server = spawn(process.execPath, [fileURLToPath(new URL("./s3rver-process.mjs", import.meta.url))], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.stdout.once("data", (chunk: Buffer) =>
      resolve((JSON.parse(chunk.toString("utf8")) as { port: number }).port),
    );
  });
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  let buckets = 0;
  const newBucket = async () => {
    const Bucket = `latch-bench-${process.pid}-${buckets++}`;
    await client.send(new CreateBucketCommand({ Bucket }));
    return Bucket;
  };

  const latch = async () => {
    const bucket = await newBucket();
    const exporter = new S3Exporter({ bucket, client, prefix: "bench" });
    const started = performance.now();
    const result = await exporter.exportSince(syntheticChangeLog(ROWS), {
      cursorName: "bench",
      progress: false,
    });
    return { seconds: (performance.now() - started) / 1_000, rows: result.rows, bytes: result.bytes };
  };

  let naiveBodies: Uint8Array[] = [];
  const naive = async () => {
    const bucket = await newBucket();
    const log = syntheticChangeLog(ROWS);
    const bodies: Uint8Array[] = [];
    let rows = 0;
    let bytes = 0;
    let cursor: string | undefined;
    const started = performance.now();
    for (let part = 0; ; part++) {
      const page = await log.listSince(cursor, PAGE);
      if (page.items.length === 0) break;
      const text = page.items.map((e) => JSON.stringify(naiveRow(e.record, e.seq))).join("\n");
      const body = gzipSync(text);
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `naive/part-${part}.jsonl.gz`, Body: body }),
      );
      bodies.push(body);
      rows += page.items.length;
      bytes += body.byteLength;
      cursor = page.cursor;
    }
    naiveBodies = bodies;
    return { seconds: (performance.now() - started) / 1_000, rows, bytes };
  };

  const rawPut = async () => {
    const bucket = await newBucket();
    let bytes = 0;
    const started = performance.now();
    for (const [i, body] of naiveBodies.entries()) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/part-${i}.jsonl.gz`, Body: body }));
      bytes += body.byteLength;
    }
    return { seconds: (performance.now() - started) / 1_000, rows: ROWS, bytes };
  };

  try {
    // Warm-up (JIT, connections, the server's folders).
    await naive();
    await latch();
    const best = {
      latch: Number.POSITIVE_INFINITY,
      naive: Number.POSITIVE_INFINITY,
      raw: Number.POSITIVE_INFINITY,
    };
    let latchBytes = 0;
    let naiveBytes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const n = await naive();
      const r = await rawPut();
      const l = await latch();
      best.naive = Math.min(best.naive, n.seconds);
      best.raw = Math.min(best.raw, r.seconds);
      best.latch = Math.min(best.latch, l.seconds);
      latchBytes = l.bytes;
      naiveBytes = n.bytes;
    }
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
    console.log(
      `\n@latch/s3 export of ${fmt(ROWS)} rated records (pages of ${fmt(PAGE)}), S3 emulator in another process, best of ${ROUNDS}`,
    );
    console.log(
      `  naive serialise + gzip + PUT   ${fmt(ROWS / best.naive).padStart(9)} rows/s  ${mb(naiveBytes, best.naive).padStart(6)} MB/s`,
    );
    console.log(
      `  S3Exporter.exportSince         ${fmt(ROWS / best.latch).padStart(9)} rows/s  ${mb(latchBytes, best.latch).padStart(6)} MB/s  ` +
        `(${((best.naive / best.latch) * 100).toFixed(0)}% of naive rows/s; target ≥ 70%)`,
    );
    console.log(
      `  raw PutObject of naive's bodies ${fmt(ROWS / best.raw).padStart(8)} rows/s  ${mb(naiveBytes, best.raw).padStart(6)} MB/s  ` +
        `(PUT alone is ${((best.raw / best.naive) * 100).toFixed(0)}% of the naive run's time)`,
    );
    reportRow({
      area: "s3",
      metric: `S3Exporter.exportSince rows/s (MB/s), ${fmt(ROWS)} rows, JSONL.gz`,
      latch: `${fmt(ROWS / best.latch)} (${mb(latchBytes, best.latch)})`,
      against: "naive serialise + gzip + PUT",
      againstValue: `${fmt(ROWS / best.naive)} (${mb(naiveBytes, best.naive)})`,
      ratio: pct(best.naive / best.latch),
      target: "≥ 70%",
      met: best.naive / best.latch >= 0.7,
    });
    reportRow({
      area: "s3",
      metric: "raw PutObject MB/s of the same bytes (where time goes)",
      latch: `${mb(latchBytes, best.latch)} MB/s export`,
      against: "raw PutObject, no serialisation",
      againstValue: `${mb(naiveBytes, best.raw)} MB/s`,
      ratio: pct(best.raw / best.latch),
    });
  } finally {
    client.destroy();
    server.stdin.end();
    await new Promise((resolve) => server.once("exit", resolve));
  }
}

await main();
