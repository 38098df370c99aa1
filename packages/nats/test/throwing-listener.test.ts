import { describe, expect, it } from "vitest";
import { runIngestWorker } from "../src/index.js";
import { memoryStores, observation, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

const ingest = useTestIngest();
const stream = ingest.stream("listener");

describe("an ingest worker whose onEvent listener throws", () => {
  it("handles every message as it would with a quiet listener: poison dead-lettered, the rest stored once, the worker keeps consuming", async () => {
    const js = (await import("@nats-io/jetstream")).jetstream(ingest.nc);
    const { ingestNames } = await import("../src/index.js");
    const names = ingestNames(stream);
    const enc = new TextEncoder();
    // Two messages no delivery can store (each reported through onEvent), three good ones.
    await js.publish(names.subject, enc.encode("not json"), { msgID: "poison-1" });
    await js.publish(names.subject, enc.encode(JSON.stringify({ eventId: "" })), { msgID: "poison-2" });
    const ids = ["l-1:0:openai", "l-2:0:openai", "l-3:0:openai"];
    for (const id of ids)
      await js.publish(names.subject, enc.encode(JSON.stringify(observation(id))), { msgID: id });
    const stores = memoryStores();
    const { observations } = stores;
    let heard = 0;
    const worker = await runIngestWorker({
      ...stores,
      nats: ingest.nc,
      stream,
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
      await waitFor("the consumer to drain", () => ingest.drained(stream));
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
