import { MemoryObservationStore, MemoryRatedRecordStore } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteIngestStreams, ensureIngestStreams, runIngestWorker } from "../src/index.js";
import { connectNats, freshStream, pricing } from "./support/fixtures.js";

const stream = freshStream("closed");
let admin: Awaited<ReturnType<typeof connectNats>>;

beforeAll(async () => {
  admin = await connectNats();
  await ensureIngestStreams(admin, { stream });
});
afterAll(async () => {
  await deleteIngestStreams(admin, stream);
  await admin.drain();
});

describe("an ingest worker whose connection is closed for good", () => {
  it("ends: `done` (and `stop()`) reject naming the closed connection, instead of fetching forever", async () => {
    const connection = await connectNats();
    const events: string[] = [];
    const worker = await runIngestWorker({
      nats: connection,
      stream,
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: pricing(),
      fetchExpiresMs: 1_000,
      onEvent: (e) => events.push(e.kind),
    });
    await connection.close();
    await expect(worker.done).rejects.toThrow(/NATS connection is closed/);
    await expect(worker.stop()).rejects.toThrow(/NATS connection is closed/);
    expect(events.filter((k) => k === "fetch_failed")).toEqual([]);
  }, 60_000);

  it("stopped first, then closed: `done` resolves with the counts", async () => {
    const connection = await connectNats();
    const worker = await runIngestWorker({
      nats: connection,
      stream,
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: pricing(),
      fetchExpiresMs: 1_000,
      onEvent: () => {},
    });
    const stats = await worker.stop();
    await connection.close();
    expect(stats.stored).toBe(0);
    await expect(worker.done).resolves.toEqual(stats);
  }, 60_000);
});
