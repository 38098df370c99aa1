import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExportResult, RatedRecordExporter } from "../../src/contracts/exporter.js";
import type { ChangeLogEntry } from "../../src/contracts/rated-record-store.js";
import { ExportError, LatchValidationError } from "../../src/errors/index.js";
import { type BillingManifest, exportPending, FileExporter } from "../../src/export/index.js";
import { sumDecimals } from "../../src/money/decimal.js";
import { ArrayChangeLog, listFiles, rec } from "./helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "latch-run-export-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Every row of every data part on disk (JSONL parts), and every manifest. */
async function exported(): Promise<{ seqs: string[]; manifests: BillingManifest[]; deltas: string[] }> {
  const files = await listFiles(dir);
  const seqs: string[] = [];
  const deltas: string[] = [];
  const manifests: BillingManifest[] = [];
  for (const [key, bytes] of files) {
    if (key.endsWith(".jsonl.gz")) {
      for (const line of gunzipSync(bytes).toString("utf8").trimEnd().split("\n")) {
        const row = JSON.parse(line) as { seq: string; cost_delta: string };
        seqs.push(row.seq);
        deltas.push(row.cost_delta);
      }
    } else if (key.includes("/_manifests/")) {
      manifests.push(JSON.parse(bytes.toString("utf8")) as BillingManifest);
    }
  }
  return { seqs: seqs.sort((a, b) => Number(a) - Number(b)), manifests, deltas };
}

function seedLog(): ArrayChangeLog {
  const log = new ArrayChangeLog();
  log.append(
    rec({ requestId: "a", total: "0.004" }),
    rec({ requestId: "b", total: "0.0031", completedAt: "2026-03-02T00:00:00Z" }),
    rec({ requestId: "c", total: "1.25", currency: "EUR" }),
    rec({ requestId: "a", version: 2, total: "0.0029" }),
    rec({ requestId: "d", total: "0.5" }),
    rec({ requestId: "b", version: 2, total: "0.0041", completedAt: "2026-03-02T00:00:00Z" }),
    rec({ requestId: "a", version: 3, total: "0.001" }),
  );
  return log;
}

describe("exportPending", () => {
  it("exports every version exactly once, then nothing", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    const first = await exportPending({ store, exporter, batchSize: 3 });
    expect(first.batches).toBe(3);
    expect(first.rows).toBe(7);
    expect(first.keys.filter((k) => k.includes("/_manifests/"))).toEqual([
      "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000001.json",
      "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000004.json",
      "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000007.json",
    ]);
    expect(await store.getCursor("default")).toBe("7");

    const { seqs, manifests, deltas } = await exported();
    expect(seqs).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
    expect(deltas.length).toBe(7);
    // Summing the manifests gives the current totals: USD 0.001 + 0.0041 + 0.5, EUR 1.25.
    const usd = manifests.map((m) => m.totalsByCurrency.USD?.costDeltaExact ?? "0");
    expect(usd).toEqual(["0.0071", "0.4999", "-0.0019"]); // 0.0071 + 0.4999 − 0.0019 = 0.5051
    expect(sumDecimals(usd)).toBe("0.5051");
    expect(manifests.map((m) => m.totalsByCurrency.EUR?.costDeltaExact)).toEqual([
      "1.25",
      undefined,
      undefined,
    ]);

    const before = await listFiles(dir);
    const saves = store.saves;
    const again = await exportPending({ store, exporter, batchSize: 3 });
    expect(again).toEqual({ batches: 0, rows: 0, bytes: 0, keys: [] });
    expect(store.saves).toBe(saves);
    expect([...(await listFiles(dir)).keys()]).toEqual([...before.keys()]);
  });

  it("keeps consumers apart", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    expect((await exportPending({ store, exporter, consumer: "one" })).rows).toBe(7);
    const other = await exportPending({ store, exporter, consumer: "two", batchSize: 1000 });
    expect(other).toMatchObject({ batches: 1, rows: 7 });
    expect(await store.getCursor("one")).toBe("7");
    expect(await store.getCursor("two")).toBe("7");
  });

  it("after a crash before saveCursor, retries exactly the same rows even when the log has grown", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    const saveCursor = store.saveCursor.bind(store);
    let failNext = false;
    store.saveCursor = async (name, cursor) => {
      if (failNext) throw new Error("crashed before saving the cursor");
      return saveCursor(name, cursor);
    };
    // Batches of 5: the second page is a partial page (rows 6–7); the crash hits its cursor save.
    await exportPending({ store, exporter, batchSize: 5 });
    store.cursors.delete("default");
    await saveCursor("default", "5");
    failNext = true;
    await expect(exportPending({ store, exporter, batchSize: 5 })).rejects.toThrow("crashed");
    expect(await store.getCursor("default")).toBe("5");
    failNext = false;

    // More versions arrive before the retry; a naive retry would export 6–9 as a new batch
    // under new keys and bill 6–7 twice.
    store.append(rec({ requestId: "e", total: "2" }), rec({ requestId: "d", version: 2, total: "0.25" }));
    const retry = await exportPending({ store, exporter, batchSize: 5 });
    expect(retry.batches).toBe(2);
    expect(retry.rows).toBe(4);
    expect(retry.keys.filter((k) => k.includes("/_manifests/"))).toEqual([
      "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000006.json",
      "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000008.json",
    ]);

    const { seqs, manifests } = await exported();
    expect(seqs).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(manifests.map((m) => [m.batchId, m.rows])).toEqual([
      ["b-0000000000000000000000000000000000000001", 5],
      ["b-0000000000000000000000000000000000000006", 2],
      ["b-0000000000000000000000000000000000000008", 2],
    ]);
  });

  it("finishes a batch in the formats its first attempt pinned, even after the format set changed", async () => {
    const store = seedLog();
    const both = new FileExporter({
      directory: dir,
      formats: ["jsonl.gz", "csv"],
      previousVersion: (id) => store.get(id),
    });
    const saveCursor = store.saveCursor.bind(store);
    store.saveCursor = async () => {
      throw new Error("crashed between the manifest and the cursor save");
    };
    await expect(exportPending({ store, exporter: both, batchSize: 5 })).rejects.toThrow("crashed");
    store.saveCursor = saveCursor;
    const before = await listFiles(dir);
    expect([...before.keys()].filter((k) => k.includes("/_manifests/"))).toHaveLength(1);

    // Redeployed with another format set: the started batch is finished as it was begun (the
    // manifest cannot change), and the batches after it use the new set.
    const jsonOnly = new FileExporter({
      directory: dir,
      formats: ["jsonl.gz"],
      previousVersion: (id) => store.get(id),
    });
    const rerun = await exportPending({ store, exporter: jsonOnly, batchSize: 5 });
    expect(rerun.rows).toBe(7);
    const after = await listFiles(dir);
    for (const [key, bytes] of before) expect(after.get(key)).toEqual(bytes);
    const manifests = [...after.entries()]
      .filter(([k]) => k.includes("/_manifests/"))
      .map(([, b]) => JSON.parse(b.toString("utf8")) as BillingManifest);
    expect(manifests.map((m) => m.formats)).toEqual([["jsonl.gz", "csv"], ["jsonl.gz"]]);
    const { seqs } = await exported();
    expect(seqs).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
  });

  it("refuses, naming the batch, to finish a pinned parquet batch without a parquet encoder", async () => {
    const store = seedLog();
    const withParquet = new FileExporter({
      directory: dir,
      formats: ["jsonl.gz", "parquet"],
      encoders: { parquet: () => new Uint8Array([1, 2, 3]) },
      previousVersion: (id) => store.get(id),
    });
    const first = store.listSince(undefined, 5);
    const page = await first;
    const intent = {
      batchId: "b-0000000000000000000000000000000000000001",
      rows: 5,
      firstSeq: "1",
      lastSeq: "5",
    };
    expect(await withParquet.beginBatch(intent)).toBeUndefined();
    const plain = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    const error = await exportPending({ store, exporter: plain, batchSize: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportError);
    expect((error as ExportError).kind).toBe("invalid_data");
    expect((error as Error).message).toContain("b-0000000000000000000000000000000000000001");
    expect(page.items).toHaveLength(5);
  });

  it("re-reads the first attempt's rows when batchSize shrank since", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    await exporter.export(store.log.slice(0, 4), { batchId: "b-0000000000000000000000000000000000000001" });
    const result = await exportPending({ store, exporter, batchSize: 2 });
    expect(result.rows).toBe(7);
    const { seqs, manifests } = await exported();
    expect(seqs).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
    expect(manifests.map((m) => m.rows)).toEqual([4, 2, 1]);
  });

  it("also follows an earlier intent through startedBatch, for exporters without beginBatch", async () => {
    const store = seedLog();
    const files = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    await files.export(store.log.slice(0, 4), { batchId: "b-0000000000000000000000000000000000000001" });
    const exporter: RatedRecordExporter = {
      export: (batch, options, signal) => files.export(batch, options, signal),
      startedBatch: (batchId, signal) => files.startedBatch(batchId, signal),
    };
    const result = await exportPending({ store, exporter, batchSize: 2 });
    expect(result.rows).toBe(7);
    expect((await exported()).manifests.map((m) => m.rows)).toEqual([4, 2, 1]);
  });

  it("beginBatch records a new intent in one step and returns an earlier attempt's", async () => {
    const exporter = new FileExporter({ directory: dir });
    const intent = {
      batchId: "b-0000000000000000000000000000000000000001",
      rows: 4,
      firstSeq: "1",
      lastSeq: "4",
    };
    expect(await exporter.beginBatch(intent)).toBeUndefined();
    expect(await exporter.startedBatch(intent.batchId)).toMatchObject(intent);
    // A later attempt proposing other rows is told the first attempt's.
    expect(await exporter.beginBatch({ ...intent, rows: 9, lastSeq: "9" })).toMatchObject(intent);
  });

  it("fails rather than guess when an earlier attempt saw other rows", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    await exporter.export(store.log.slice(0, 2), { batchId: "b-0000000000000000000000000000000000000001" });
    const swapped = store.log[1] as ChangeLogEntry;
    store.log[1] = store.log[2] as ChangeLogEntry;
    store.log[2] = swapped;
    const err = await exportPending({ store, exporter }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).kind).toBe("invalid_data");
    expect(await store.getCursor("default")).toBeUndefined();
  });

  it("works with any RatedRecordExporter and passes deterministic batch ids", async () => {
    const store = seedLog();
    const calls: Array<[string, string[]]> = [];
    const exporter: RatedRecordExporter = {
      async export(batch, { batchId }): Promise<ExportResult> {
        calls.push([batchId, batch.map((e) => e.seq)]);
        return { keys: [`k/${batchId}`], rows: batch.length, alreadyExported: false };
      },
    };
    const progress: Array<[string, number, number]> = [];
    const result = await exportPending({
      store,
      exporter,
      batchSize: 4,
      consumer: "billing",
      onBatch: (batch, totals) => progress.push([batch.batchId, batch.rows, totals.rows]),
    });
    expect(progress).toEqual([
      ["b-0000000000000000000000000000000000000001", 4, 4],
      ["b-0000000000000000000000000000000000000005", 3, 7],
    ]);
    expect(result).toEqual({
      batches: 2,
      rows: 7,
      bytes: 0,
      keys: ["k/b-0000000000000000000000000000000000000001", "k/b-0000000000000000000000000000000000000005"],
    });
    expect(calls).toEqual([
      ["b-0000000000000000000000000000000000000001", ["1", "2", "3", "4"]],
      ["b-0000000000000000000000000000000000000005", ["5", "6", "7"]],
    ]);
    expect(await store.getCursor("billing")).toBe("7");
  });

  it("does not save the cursor when the export fails, and honours the signal", async () => {
    const store = seedLog();
    const failing: RatedRecordExporter = {
      async export() {
        throw new ExportError({ kind: "connection", reason: "down" });
      },
    };
    await expect(exportPending({ store, exporter: failing })).rejects.toBeInstanceOf(ExportError);
    expect(await store.getCursor("default")).toBeUndefined();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    await expect(
      exportPending({ store, exporter, signal: AbortSignal.abort(new Error("cancelled")) }),
    ).rejects.toThrow("cancelled");
    expect(await listFiles(dir)).toEqual(new Map());
  });

  it("validates its options", async () => {
    const store = seedLog();
    const exporter = new FileExporter({ directory: dir });
    for (const [opts, field] of [
      [{ batchSize: 0 }, "batchSize"],
      [{ batchSize: 1.5 }, "batchSize"],
      [{ consumer: "" }, "consumer"],
    ] as const) {
      const err = await exportPending({ store, exporter, ...opts }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LatchValidationError);
      expect((err as LatchValidationError).issues[0]?.path).toBe(field);
    }
  });
});

describe("previous versions outside the batch", () => {
  it("are looked up in the store, so a correction exported after its v1 gets the right cost_delta", async () => {
    const store = seedLog();
    const seen: string[] = [];
    const exporter: RatedRecordExporter = {
      async export(batch, { previousVersion }): Promise<ExportResult> {
        for (const e of batch) {
          if (e.record.supersedes)
            seen.push(`${e.record.supersedes}=${(await previousVersion?.(e.record.supersedes))?.total}`);
        }
        return { keys: [], rows: batch.length, alreadyExported: false };
      },
    };
    await exportPending({ store, exporter, batchSize: 1 });
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s).not.toMatch(/=undefined$/);
  });
});
