import { LatchValidationError, type UsageObservation } from "@latch/core";
import type { AppendResult } from "@latch/core/adapter";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { ingestNames, natsIngestLog, replayDeadLetters, runIngestWorker } from "../src/index.js";
import { CountingObservationStore, memoryStores, observation, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

/**
 * A store with a bug: it refuses some eventIds as invalid input (a permanent error, so the
 * worker dead-letters them) until it is fixed.
 */
class BuggyObservationStore extends CountingObservationStore {
  fixed = false;
  override async append(obs: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    if (!this.fixed && obs.eventId.startsWith("bug-"))
      throw LatchValidationError.at("observation", "eventId", "refused by a bug");
    return super.append(obs, signal);
  }
}

const ingest = useTestIngest();
const stream = ingest.stream("replay");
const names = ingestNames(stream);

async function deadLetterCount(): Promise<number> {
  const jsm = await jetstreamManager(ingest.nc);
  return (await jsm.streams.info(names.deadLetterStream)).state.messages;
}

async function drain(worker: Awaited<ReturnType<typeof runIngestWorker>>, settled: () => boolean) {
  await waitFor("the worker to settle every message", async () => settled());
  await waitFor("the consumer to drain", () => ingest.drained(stream));
  return worker.stop();
}

describe("replayDeadLetters", () => {
  it("publishes the chosen dead letters back once the cause is fixed; each is stored once, the rest kept", async () => {
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const ids = ["ok-1:0:openai", "bug-1:0:openai", "bug-2:0:openai"];
    for (const id of ids) await log.publish(observation(id));
    await jetstream(ingest.nc).publish(names.subject, new TextEncoder().encode("{ not json"), {
      msgID: "junk",
    });

    const buggy = memoryStores(new BuggyObservationStore());
    const first = await runIngestWorker({
      ...buggy,
      nats: ingest.nc,
      stream,
      concurrency: 1,
      onEvent: () => {},
    });
    const s1 = await drain(first, () => first.stats().stored + first.stats().deadLettered === 4);
    expect(s1).toMatchObject({ stored: 1, deadLettered: 3 });
    expect(await deadLetterCount()).toBe(3);

    // Only the dead letters of the bug: the message that is not JSON stays dead.
    expect(await replayDeadLetters(ingest.nc, { stream, codes: ["invalid_input"] })).toEqual({
      replayed: 2,
      kept: 1,
    });
    expect(await deadLetterCount()).toBe(1);
    // A second replay finds nothing of that code.
    expect(await replayDeadLetters(ingest.nc, { stream, codes: ["invalid_input"] })).toEqual({
      replayed: 0,
      kept: 1,
    });

    // The fixed deployment stores them, on the same stores as the first (ok-1 is not stored twice).
    buggy.observations.fixed = true;
    const second = await runIngestWorker({ ...buggy, nats: ingest.nc, stream, onEvent: () => {} });
    const s2 = await drain(second, () => second.stats().stored === 2);
    expect(s2).toMatchObject({ stored: 2, deadLettered: 0 });
    for (const id of ids) expect(buggy.observations.appended.get(id)).toBe(1);
    expect(await deadLetterCount()).toBe(1);
  }, 120_000);

  it("on an empty dead-letter stream replays nothing", async () => {
    const empty = await ingest.fresh("replay_empty");
    expect(await replayDeadLetters(ingest.nc, { stream: empty })).toEqual({ replayed: 0, kept: 0 });
  });
});
