import type { UsageObservation } from "@latch/core";
import type { AppendResult } from "@latch/core/adapter";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsIngestLog, runIngestWorker } from "../src/index.js";
import {
  CountingObservationStore,
  connectNats,
  memoryStores,
  observation,
  waitFor,
} from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

// A store slower than the consumer's ack wait. Slowness is the fault here (a loaded database),
// stood in for by a delay before the real in-memory append.
class SlowObservationStore extends CountingObservationStore {
  constructor(private readonly delayMs: number) {
    super();
  }
  override async append(obs: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.append(obs, signal);
  }
}

const ingest = useTestIngest();
const stream = ingest.stream("slow");
let second: NatsConnection;

beforeAll(async () => {
  second = await connectNats();
});
afterAll(async () => {
  await second.drain();
});

describe("an ingest worker on a store slower than the ack wait", () => {
  it("keeps its messages (working()): none is redelivered to the other worker, each is stored once", async () => {
    const stores = memoryStores(new SlowObservationStore(3_000));
    const { observations } = stores;
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const ids = Array.from({ length: 4 }, (_, i) => `slow-${i}:0:openai`);
    for (const id of ids) await log.publish(observation(id));
    // Ack wait 2 s; each append takes 3 s, one at a time: the last message waits 12 s in hand.
    const a = await runIngestWorker({
      ...stores,
      nats: ingest.nc,
      stream,
      ackWaitMs: 2_000,
      concurrency: 1,
      batchSize: 4,
      onEvent: () => {},
    });
    // A second member of the group would receive any message the server redelivered.
    await waitFor("the first worker to take the batch", async () => a.stats().messages > 0, 30_000);
    const b = await runIngestWorker({ ...stores, nats: second, stream, onEvent: () => {} });
    try {
      await waitFor(
        "every message to be stored",
        async () => ids.every((id) => observations.appended.get(id) === 1),
        60_000,
      );
      await waitFor("the consumer to drain", () => ingest.drained(stream));
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(a.stats()).toMatchObject({ stored: 4, redelivered: 0, retried: 0 });
    expect(b.stats()).toMatchObject({ messages: 0 });
    expect(observations.alreadyExisting.size).toBe(0);
  }, 120_000);
});
