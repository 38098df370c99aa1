// Found by an adversarial review: a dead letter's message id was `<stream>:<seq>`. A stream
// deleted and created again (its dead-letter stream kept, as ensureIngestStreams does) numbers
// its messages from 1 again: inside the dead-letter stream's duplicate window, the dead letter
// of the new message 1 was acknowledged as a duplicate of the old one's, and the message was
// terminated with no trace anywhere. And a replayed dead letter's id was `<dead stream>:<seq>:replay`:
// a dead-letter stream created again numbers from 1 again, and the replay of its new dead letter 1
// was dropped by the log as a duplicate, then deleted from the dead letters: gone.
import { MemoryRatedRecordStore } from "@latch/core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  deleteIngestStreams,
  ensureIngestStreams,
  ingestLag,
  ingestNames,
  replayDeadLetters,
  runIngestWorker,
} from "../src/index.js";
import { CountingObservationStore, connectNats, freshStream, pricing, waitFor } from "./support/fixtures.js";

let nc: NatsConnection;
const stream = freshStream("dlid");
const stream2 = freshStream("dlrp");

beforeAll(async () => {
  nc = await connectNats();
});
afterAll(async () => {
  await deleteIngestStreams(nc, stream);
  await deleteIngestStreams(nc, stream2);
  await nc.close();
});

async function deadLetterOnce(body: string | undefined, log = stream): Promise<void> {
  if (body !== undefined)
    await jetstream(nc).publish(ingestNames(log).subject, new TextEncoder().encode(body));
  const worker = await runIngestWorker({
    nats: nc,
    stream: log,
    observations: new CountingObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: pricing(),
    onEvent: () => {},
  });
  try {
    await waitFor("the log drained", async () => {
      const lag = await ingestLag(nc, log);
      return lag.pending + lag.ackPending === 0;
    });
  } finally {
    await worker.stop();
  }
}

it("a stream created again: the dead letter of its message 1 is kept beside the old one's", async () => {
  const names = ingestNames(stream);
  const jsm = await jetstreamManager(nc);
  await ensureIngestStreams(nc, { stream });
  await deadLetterOnce("not json, first");
  // The log deleted and created again (e.g. to change a setting), its dead letters kept.
  await jsm.streams.delete(names.stream);
  await ensureIngestStreams(nc, { stream });
  await deadLetterOnce("not json, second");

  const info = await jsm.streams.info(names.deadLetterStream);
  expect(info.state.messages).toBe(2); // was 1: the second poison message vanished
  const bodies: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(names.deadLetterStream, { seq });
    if (m) bodies.push(new TextDecoder().decode(m.data));
  }
  expect(bodies).toEqual(["not json, first", "not json, second"]);
}, 90_000);

it("a dead-letter stream created again: the replay of its dead letter 1 reaches the log", async () => {
  const names = ingestNames(stream2);
  const jsm = await jetstreamManager(nc);
  await ensureIngestStreams(nc, { stream: stream2 });
  await deadLetterOnce("not json, replayed twice", stream2);
  // Replayed (the fix was thought to be in), dead-lettered again: dead letter 1 of a dead-letter
  // stream created meanwhile (e.g. to change its limits).
  expect(await replayDeadLetters(nc, { stream: stream2 })).toEqual({ replayed: 1, kept: 0 });
  await jsm.streams.delete(names.deadLetterStream);
  await ensureIngestStreams(nc, { stream: stream2 });
  await deadLetterOnce(undefined, stream2);
  expect((await jsm.streams.info(names.deadLetterStream)).state.last_seq).toBe(1);

  expect(await replayDeadLetters(nc, { stream: stream2 })).toEqual({ replayed: 1, kept: 0 });
  // The log holds it again (was: dropped as a duplicate of the first replay, and deleted).
  expect(await ingestLag(nc, stream2)).toEqual({ pending: 1, ackPending: 0 });
  expect((await jsm.streams.info(names.deadLetterStream)).state.messages).toBe(0);
}, 90_000);
