/**
 * Crash safety of `exportSince`: a crash is injected right after each step — after every
 * object PUT (intent, each part, the manifest) and before each cursor save — by aborting the
 * run at that point (the process would die there; nothing after it happens). A rerun with a
 * fresh exporter must then leave exactly what an uninterrupted run leaves: the same keys with
 * the same bytes, every version exactly once downstream.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { MemoryRatedRecordStore } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Exporter } from "../src/index.js";
import { consumeExport } from "./support/consumer.js";
import { allEntries, seedStore, storeTotals } from "./support/dataset.js";
import { startTestS3, type TestS3 } from "./support/s3-server.js";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
});

const EVENTS = 230; // + 33 corrections = 263 versions: batches of 100, 100, 63
const BATCH = 100;
const FORMATS = ["jsonl.gz", "parquet"] as const;
const PREFIX = "crash";

class Crash extends Error {
  constructor(where: string) {
    super(`injected crash ${where}`);
  }
}

/** A client that "dies" right after its n-th successful PutObject (the object is stored). */
function crashAfterPut(n: number, controller: AbortController): S3Client {
  const client = s3.client();
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  let puts = 0;
  (client as unknown as { send: typeof send }).send = async (command, options) => {
    const out = await send(command, options);
    if (command instanceof PutObjectCommand && ++puts === n) {
      const crash = new Crash(`after PUT #${n} (${command.input.Key})`);
      controller.abort(crash);
      throw crash;
    }
    return out;
  };
  return client;
}

/** The store, except that its n-th saveCursor "dies" before saving. */
function crashBeforeCursor(store: MemoryRatedRecordStore, n: number, controller: AbortController) {
  let saves = 0;
  return {
    listSince: store.listSince.bind(store),
    getCursor: store.getCursor.bind(store),
    get: store.get.bind(store),
    saveCursor: async (name: string, cursor: string, signal?: AbortSignal) => {
      if (++saves === n) {
        const crash = new Crash(`before cursor save #${n}`);
        controller.abort(crash);
        throw crash;
      }
      return store.saveCursor(name, cursor, signal);
    },
  };
}

async function objects(bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await s3.list(bucket)) {
    const bytes = await s3.get(bucket, key);
    out.set(key, Buffer.from(bytes ?? new Uint8Array()).toString("base64"));
  }
  return out;
}

const newExporter = (bucket: string, client: S3Client = s3.client()) =>
  new S3Exporter({ bucket, prefix: PREFIX, client, formats: [...FORMATS], retry: { baseDelayMs: 1 } });

describe("exportSince after a crash at any step", () => {
  let reference: Map<string, string>;
  let totalPuts: number;

  beforeAll(async () => {
    const { store } = await seedStore(EVENTS, undefined, { runId: "crash-fixed" });
    const bucket = await s3.createBucket();
    const before = s3.requests.length;
    await newExporter(bucket).exportSince(store, {
      cursorName: "billing",
      batchSize: BATCH,
      progress: false,
    });
    totalPuts = s3.requests.slice(before).filter((r) => r.method === "PUT").length;
    reference = await objects(bucket);
  });

  it("crashing after every single PUT, then rerunning, leaves exactly the uninterrupted run's objects", async () => {
    // 3 batches × (intent + 5 days × 2 formats + manifest) = 36 PUTs.
    expect(totalPuts).toBe(36);
    for (let n = 1; n <= totalPuts; n++) {
      const { store } = await seedStore(EVENTS, undefined, { runId: "crash-fixed" });
      const bucket = await s3.createBucket();
      const controller = new AbortController();
      await expect(
        newExporter(bucket, crashAfterPut(n, controller)).exportSince(store, {
          cursorName: "billing",
          batchSize: BATCH,
          signal: controller.signal,
          progress: false,
        }),
      ).rejects.toBeInstanceOf(Crash);
      await newExporter(bucket).exportSince(store, {
        cursorName: "billing",
        batchSize: BATCH,
        progress: false,
      });
      expect(await objects(bucket), `crash after PUT #${n}`).toEqual(reference);
    }
  });

  it("crashing before each cursor save, then rerunning, leaves exactly the same objects", async () => {
    for (let n = 1; n <= 3; n++) {
      const { store } = await seedStore(EVENTS, undefined, { runId: "crash-fixed" });
      const bucket = await s3.createBucket();
      const controller = new AbortController();
      await expect(
        newExporter(bucket).exportSince(crashBeforeCursor(store, n, controller), {
          cursorName: "billing",
          batchSize: BATCH,
          signal: controller.signal,
          progress: false,
        }),
      ).rejects.toBeInstanceOf(Crash);
      const rerun = await newExporter(bucket).exportSince(store, {
        cursorName: "billing",
        batchSize: BATCH,
        progress: false,
      });
      // The batch whose cursor was lost is found already exported; later ones are new.
      expect(rerun.batches).toBe(3 - n + 1);
      expect(await objects(bucket), `crash before cursor save #${n}`).toEqual(reference);
    }
  });

  it("a store that grew between the crash and the rerun still gets every version exactly once", async () => {
    for (const n of [2, 13, 25, 36]) {
      const { store } = await seedStore(EVENTS, undefined, { runId: `grow-${n}` });
      const bucket = await s3.createBucket();
      const controller = new AbortController();
      await expect(
        newExporter(bucket, crashAfterPut(n, controller)).exportSince(store, {
          cursorName: "billing",
          batchSize: BATCH,
          signal: controller.signal,
          progress: false,
        }),
      ).rejects.toBeInstanceOf(Crash);
      await seedStore(57, store, { runId: `grow-${n}-more` });
      // A different batch size on the rerun: the intent still cuts the interrupted batch to its first rows.
      await newExporter(bucket).exportSince(store, { cursorName: "billing", batchSize: 70, progress: false });

      const consumed = await consumeExport(s3, bucket, PREFIX);
      const expected = (await allEntries(store)).map((e) => e.record.ratedRecordId).sort();
      for (const format of FORMATS) {
        const ids = (consumed.rows.get(format) ?? []).map((r) => r.rated_record_id).sort();
        expect(ids, `${format}, crash after PUT #${n}`).toEqual(expected);
      }
      expect(consumed.manifestTotals).toEqual(await storeTotals(store));
    }
  });
});
