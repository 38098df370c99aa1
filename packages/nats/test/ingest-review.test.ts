import { join } from "node:path";
import { createLatch, type UsageObservation } from "@latch/core";
import { SchemaNotMigratedError } from "@latch/postgres";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { type IngestWorkerEvent, ingestNames, natsIngestLog } from "../src/index.js";
import { CountingObservationStore, memoryStores, observation, waitFor } from "./support/fixtures.js";
import { useTempDir, useTestIngest } from "./support/hooks.js";

const ingest = useTestIngest();
const spoolRoot = useTempDir("latch-nats-review-");

describe("ingest log: conflicting payloads and deployment faults", () => {
  it("a second record() of an eventId with a DIFFERENT payload is not silently accepted and dropped", async () => {
    // Inline (no ingest log) the second call throws idempotency_conflict to the caller.
    const inline = createLatch({
      ...memoryStores(),
      spoolDir: join(spoolRoot.path, "inline"),
      onWarning: () => {},
    });
    await inline.record(observation("conf-1:0:openai"));
    await expect(
      inline.record(observation("conf-1:0:openai", { outputTokens: 90_000 })),
    ).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
    await inline.close();

    // Through the log, inside the duplicate window: the stream deduplicates a repeat of the
    // same call, but a different payload under the same eventId is a new message (it reaches a
    // worker, whose store answers idempotency_conflict and dead-letters it) — never dropped.
    const stream = await ingest.fresh("conf");
    const latch = createLatch({
      ...memoryStores(),
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir: join(spoolRoot.path, "conf"),
      onWarning: () => {},
    });
    expect((await latch.record(observation("conf-1:0:openai"))).status).toBe("accepted");
    expect((await latch.record(observation("conf-1:0:openai"))).status).toBe("accepted");
    const info = async () => (await (await jetstreamManager(ingest.nc)).streams.info(stream)).state.messages;
    expect(await info()).toBe(1);
    expect((await latch.record(observation("conf-1:0:openai", { outputTokens: 90_000 }))).status).toBe(
      "accepted",
    );
    expect(await info()).toBe(2);
    await latch.close();
  });

  it("a deployment fault (schema_not_migrated) is retried, not dead-lettered for every message", async () => {
    const stream = await ingest.fresh("deploy");
    const observations = new (class extends CountingObservationStore {
      migrated = false;
      override async append(obs: UsageObservation, signal?: AbortSignal) {
        if (!this.migrated) throw new SchemaNotMigratedError({ schema: "latch", found: 12, required: 13 });
        return super.append(obs, signal);
      }
    })();
    const latch = createLatch({
      ...memoryStores(observations),
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir: join(spoolRoot.path, "deploy"),
      onWarning: () => {},
    });
    for (let i = 0; i < 3; i++)
      expect((await latch.record(observation(`deploy-${i}:0:openai`))).status).toBe("accepted");
    const events: IngestWorkerEvent[] = [];
    const worker = await ingest.startWorker({
      ...memoryStores(observations),
      nats: ingest.nc,
      stream,
      retryDelayMs: 1_000,
      onEvent: (e) => events.push(e),
    });
    await waitFor("the worker to see all three", async () => worker.stats().messages >= 3);
    observations.migrated = true; // the operator runs migrate()
    const dead = await (await jetstreamManager(ingest.nc)).streams.info(ingestNames(stream).deadLetterStream);
    // On main all three calls are already in the dead-letter stream: out of billing for good
    // (nothing replays dead letters), after a fault the operator fixes in minutes.
    expect(dead.state.messages).toBe(0);
    await waitFor("the worker to store them after the migration", async () => worker.stats().stored === 3);
    await latch.close();
  });
});
