import { MemoryRatedRecordStore } from "@latch/core";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteIngestStreams, ensureIngestStreams, ingestLag, runIngestWorker } from "../src/index.js";
import {
  CountingObservationStore,
  connectNats,
  freshStream,
  observation,
  pricing,
  waitFor,
} from "./support/fixtures.js";

let nc: NatsConnection;
const stream = freshStream("listener");

beforeAll(async () => {
  nc = await connectNats();
  await ensureIngestStreams(nc, { stream });
});
afterAll(async () => {
  await deleteIngestStreams(nc, stream);
  await nc.drain();
});

describe("an ingest worker whose onEvent listener throws", () => {
  it("handles every message as it would with a quiet listener: poison dead-lettered, the rest stored once, the worker keeps consuming", async () => {
    const js = (await import("@nats-io/jetstream")).jetstream(nc);
    const { ingestNames } = await import("../src/index.js");
    const names = ingestNames(stream);
    const enc = new TextEncoder();
    // Two messages no delivery can store (each reported through onEvent), three good ones.
    await js.publish(names.subject, enc.encode("not json"), { msgID: "poison-1" });
    await js.publish(names.subject, enc.encode(JSON.stringify({ eventId: "" })), { msgID: "poison-2" });
    const ids = ["l-1:0:openai", "l-2:0:openai", "l-3:0:openai"];
    for (const id of ids)
      await js.publish(names.subject, enc.encode(JSON.stringify(observation(id))), { msgID: id });
    const observations = new CountingObservationStore();
    let heard = 0;
    const worker = await runIngestWorker({
      nats: nc,
      stream,
      observations,
      rated: new MemoryRatedRecordStore(),
      pricing: pricing(),
      fetchExpiresMs: 1_000,
      onEvent: () => {
        heard++;
        throw new Error("a listener that throws");
      },
    });
    try {
      await waitFor("the good messages to be stored", async () =>
        ids.every((id) => observations.appended.get(id) === 1),
      );
      await waitFor("the consumer to drain", async () => {
        const lag = await ingestLag(nc, stream);
        return lag.pending === 0 && lag.ackPending === 0;
      });
      expect(worker.stats()).toMatchObject({ stored: 3, deadLettered: 2, retried: 0 });
      expect(heard).toBe(2);
      // Still consuming after the listener threw.
      const late = "l-4:0:openai";
      await js.publish(names.subject, enc.encode(JSON.stringify(observation(late))), { msgID: late });
      await waitFor("a later message to be stored", async () => observations.appended.get(late) === 1);
    } finally {
      await worker.stop();
    }
  }, 90_000);
});
