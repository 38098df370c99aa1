/**
 * S3 faults injected by the test server's proxy (403, 500, 503 SlowDown, resets before the
 * request reaches the server and after it was applied, NoSuchBucket): each maps to the right
 * ExportError kind, is retried exactly when retrying is right, and never leaves a batch
 * half-published (no manifest until every part is stored; a rerun completes it exactly once).
 */
import { LatchError } from "@latch/core";
import type { ExportError } from "@latch/core/errors";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { S3Exporter } from "../src/index.js";
import { backoffMs, retryPolicy } from "../src/retry.js";
import { consumeExport } from "./support/consumer.js";
import { allEntries, seedStore } from "./support/dataset.js";
import { type RequestInfo, startTestS3, type TestS3 } from "./support/s3-server.js";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterEach(() => s3.clearFaults());
afterAll(async () => {
  await s3?.close();
});

const isPart = (r: RequestInfo) =>
  r.method === "PUT" && r.path.includes("/dt%3D") && !r.query.has("partNumber");
const isManifest = (r: RequestInfo) => r.method === "PUT" && r.path.includes("/_manifests/");
/** The first day's JSONL part (parts of a batch go up concurrently; this pins one of them). */
const isFirstPart = (r: RequestInfo) =>
  isPart(r) && r.path.includes("/dt%3D2026-03-01/") && r.path.endsWith(".jsonl.gz");
/** PUT attempts per key. */
const attemptsByKey = (requests: RequestInfo[]) => {
  const counts = new Map<string, number>();
  for (const r of requests) if (r.method === "PUT") counts.set(r.path, (counts.get(r.path) ?? 0) + 1);
  return counts;
};

async function setup(options: { events?: number; days?: number; maxAttempts?: number; runId?: string } = {}) {
  const { store, versions } = await seedStore(options.events ?? 60, undefined, {
    days: options.days ?? 2,
    ...(options.runId !== undefined ? { runId: options.runId } : {}),
  });
  const bucket = await s3.createBucket();
  const exporter = new S3Exporter({
    bucket,
    client: s3.client(),
    formats: ["jsonl.gz", "csv"],
    retry: { maxAttempts: options.maxAttempts ?? 4, baseDelayMs: 1, maxDelayMs: 20 },
    multipartThresholdBytes: 5 * 1024 * 1024,
    partSizeBytes: 5 * 1024 * 1024,
  });
  const run = () =>
    exporter.exportSince(store, { cursorName: "billing", batchSize: 10_000, progress: false });
  const requestsFrom = s3.requests.length;
  const seen = () => s3.requests.slice(requestsFrom);
  const manifests = async () => (await s3.list(bucket)).filter((k) => k.includes("/_manifests/"));
  const exactlyOnce = async () => {
    const consumed = await consumeExport(s3, bucket, "");
    const expected = (await allEntries(store)).map((e) => e.record.ratedRecordId).sort();
    for (const format of ["jsonl.gz", "csv"]) {
      expect((consumed.rows.get(format) ?? []).map((r) => r.rated_record_id).sort(), format).toEqual(
        expected,
      );
    }
  };
  return { store, versions, bucket, run, seen, manifests, exactlyOnce };
}

async function exportError(promise: Promise<unknown>): Promise<ExportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(LatchError.isInstance(error), String(error)).toBe(true);
  expect((error as LatchError).code).toBe("export_failed");
  return error as ExportError;
}

describe("S3 faults", () => {
  it("403 AccessDenied ⇒ auth, not retried, no manifest; the cursor stays so a rerun publishes it", async () => {
    const t = await setup();
    s3.inject({ match: isFirstPart, fault: { status: 403, code: "AccessDenied", message: "Access Denied" } });
    const error = await exportError(t.run());
    expect(error.kind).toBe("auth");
    expect(error.isRetryable).toBe(false);
    // Not retried: every key was tried at most once, the refused part exactly once.
    expect([...attemptsByKey(t.seen()).values()].every((n) => n === 1)).toBe(true);
    expect(t.seen().filter(isFirstPart)).toHaveLength(1);
    expect(await t.manifests()).toEqual([]);
    expect(await t.store.getCursor("billing")).toBeUndefined();
    expect((await t.run()).rows).toBe(t.versions);
    await t.exactlyOnce();
  });

  it("500 InternalError twice ⇒ retried, then published once", async () => {
    const t = await setup();
    s3.inject({ match: isPart, fault: { status: 500, code: "InternalError" }, times: 2 });
    expect((await t.run()).rows).toBe(t.versions);
    // 2 days × 2 formats = 4 parts, plus the 2 failed attempts.
    expect(t.seen().filter(isPart)).toHaveLength(6);
    await t.exactlyOnce();
  });

  it("503 SlowDown on every attempt ⇒ rate_limited with retryAfterMs after maxAttempts, nothing half-published", async () => {
    const t = await setup({ maxAttempts: 3 });
    s3.inject({
      match: isFirstPart,
      fault: { status: 503, code: "SlowDown", message: "Please reduce your request rate." },
      times: 3,
    });
    const error = await exportError(t.run());
    expect(error.kind).toBe("rate_limited");
    expect(error.isRetryable).toBe(true);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(t.seen().filter(isFirstPart)).toHaveLength(3);
    expect(await t.manifests()).toEqual([]);
    expect((await t.run()).rows).toBe(t.versions);
    await t.exactlyOnce();
  });

  it("connection resets before the request reaches S3 ⇒ retried", async () => {
    const t = await setup();
    s3.inject({ match: isPart, fault: "reset-before", times: 2 });
    expect((await t.run()).rows).toBe(t.versions);
    await t.exactlyOnce();
  });

  it("a reset after S3 stored the object (lost response) ⇒ the retry's 412 is checked against the stored checksum and accepted", async () => {
    const t = await setup();
    s3.inject({ match: isPart, fault: "reset-after" });
    s3.inject({ match: isManifest, fault: "reset-after" });
    const result = await t.run();
    expect(result.rows).toBe(t.versions);
    const seen = t.seen();
    // The part and the manifest were each PUT twice (the second answered 412), checked by HEAD.
    expect(seen.filter((r) => r.method === "HEAD")).toHaveLength(2);
    expect(seen.filter((r) => r.method === "GET")).toHaveLength(0); // beginBatch created the intent: nothing to read
    await t.exactlyOnce();
  });

  it("NoSuchBucket ⇒ auth (the bucket cannot be written), not retried", async () => {
    const t = await setup();
    const exporter = new S3Exporter({
      bucket: "latch-no-such-bucket",
      client: s3.client(),
      retry: { baseDelayMs: 1 },
    });
    const error = await exportError(
      exporter.exportSince(t.store, { cursorName: "billing", progress: false }),
    );
    expect(error.kind).toBe("auth");
  });

  it("an object someone else wrote under a key ⇒ invalid_data, nothing overwritten, no manifest", async () => {
    const t = await setup();
    const first = new S3Exporter({ bucket: t.bucket, client: s3.client(), formats: ["csv"] });
    // Same keys from a store with other rows: the batch's csv part exists with different bytes.
    const other = await seedStore(60, undefined, { days: 2 });
    await first.exportSince(other.store, { cursorName: "billing", progress: false });
    const before = await s3.list(t.bucket);
    const error = await exportError(t.run());
    expect(error.kind).toBe("invalid_data");
    expect(error.message).toContain("different content");
    // Only the new jsonl.gz parts may have appeared (they are not listed by any manifest of this batch).
    const after = await s3.list(t.bucket);
    expect(after.filter((k) => !before.includes(k)).every((k) => k.endsWith(".jsonl.gz"))).toBe(true);
    expect(await t.manifests()).toEqual(before.filter((k) => k.includes("/_manifests/")));
  });

  it("multipart parts: a failed part upload is retried, a lost Complete response is checked, the object reads back whole", async () => {
    // One day and long event ids, so the CSV part of the first 10,000-row batch (~7 MB) is
    // above the 5 MiB multipart threshold and goes up in two parts.
    const t = await setup({ events: 9_000, days: 1, runId: `multipart-${"x".repeat(120)}` });
    s3.inject({
      match: (r) => r.method === "PUT" && r.query.has("partNumber"),
      fault: { status: 500, code: "InternalError" },
    });
    s3.inject({ match: (r) => r.method === "POST" && r.query.has("uploadId"), fault: "reset-after" });
    expect((await t.run()).rows).toBe(t.versions);
    const seen = t.seen();
    const uploads = seen.filter((r) => r.method === "POST" && r.query.has("uploads"));
    expect(uploads.length).toBe(1); // only that CSV part is that large
    const csv = (await s3.list(t.bucket)).find((k) => k.endsWith(".csv")) as string;
    expect((await s3.get(t.bucket, csv))?.byteLength).toBeGreaterThan(5 * 1024 * 1024);
    expect(seen.filter((r) => r.method === "PUT" && r.query.has("partNumber")).length).toBeGreaterThanOrEqual(
      3,
    );
    await t.exactlyOnce();
  });
});

describe("backoff", () => {
  it("is full jitter over an exponentially growing cap, bounded by maxDelayMs, never below Retry-After", () => {
    const policy = { ...retryPolicy({ baseDelayMs: 100, maxDelayMs: 1_000 }), random: () => 0.5 };
    expect([1, 2, 3, 4, 5].map((retry) => backoffMs(policy, retry))).toEqual([50, 100, 200, 400, 500]);
    expect(backoffMs({ ...policy, random: () => 0 }, 3)).toBe(0);
    expect(backoffMs({ ...policy, random: () => 0 }, 3, 700)).toBe(700);
    expect(backoffMs({ ...policy, random: () => 0 }, 3, 60_000)).toBe(1_000);
  });
});
