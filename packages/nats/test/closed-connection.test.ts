import { MemoryObservationStore } from "@latch/core";
import { describe, expect, it } from "vitest";
import { runIngestWorker } from "../src/index.js";
import { connectNats, memoryStores } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

const stream = useTestIngest().stream("closed");

describe("an ingest worker whose connection is closed for good", () => {
  it("ends: `done` (and `stop()`) reject naming the closed connection, instead of fetching forever", async () => {
    const connection = await connectNats();
    const events: string[] = [];
    const worker = await runIngestWorker({
      nats: connection,
      stream,
      ...memoryStores(new MemoryObservationStore()),
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
      ...memoryStores(new MemoryObservationStore()),
      fetchExpiresMs: 1_000,
      onEvent: () => {},
    });
    const stats = await worker.stop();
    await connection.close();
    expect(stats.stored).toBe(0);
    await expect(worker.done).resolves.toEqual(stats);
  }, 60_000);
});
