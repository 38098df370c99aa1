// Found by an adversarial review: a dead letter's message id was `<stream>:<seq>`. A stream
// deleted and created again (its dead-letter stream kept, as ensureIngestStreams does) numbers
// its messages from 1 again: inside the dead-letter stream's duplicate window, the dead letter
// of the new message 1 was acknowledged as a duplicate of the old one's, and the message was
// terminated with no trace anywhere. And a replayed dead letter's id was `<dead stream>:<seq>:replay`:
// a dead-letter stream created again numbers from 1 again, and the replay of its new dead letter 1
// was dropped by the log as a duplicate, then deleted from the dead letters: gone.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import {
  ensureIngestStreams,
  ingestLag,
  ingestNames,
  replayDeadLetters,
  runIngestWorker,
} from "../src/index.js";
import { memoryStores, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

const ingest = useTestIngest();
// Created by the tests themselves (each test deletes and creates a part again), deleted after them.
const stream = ingest.track("dlid");
const stream2 = ingest.track("dlrp");

async function deadLetterOnce(body: string | undefined, log = stream): Promise<void> {
  if (body !== undefined)
    await jetstream(ingest.nc).publish(ingestNames(log).subject, new TextEncoder().encode(body));
  const worker = await runIngestWorker({
    nats: ingest.nc,
    stream: log,
    ...memoryStores(),
    onEvent: () => {},
  });
  try {
    await waitFor("the log drained", () => ingest.drained(log));
  } finally {
    await worker.stop();
  }
}

it("a stream created again: the dead letter of its message 1 is kept beside the old one's", async () => {
  const names = ingestNames(stream);
  const jsm = await jetstreamManager(ingest.nc);
  await ensureIngestStreams(ingest.nc, { stream });
  await deadLetterOnce("not json, first");
  // The log deleted and created again (e.g. to change a setting), its dead letters kept.
  await jsm.streams.delete(names.stream);
  await ensureIngestStreams(ingest.nc, { stream });
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
  const jsm = await jetstreamManager(ingest.nc);
  await ensureIngestStreams(ingest.nc, { stream: stream2 });
  await deadLetterOnce("not json, replayed twice", stream2);
  // Replayed (the fix was thought to be in), dead-lettered again: dead letter 1 of a dead-letter
  // stream created meanwhile (e.g. to change its limits).
  expect(await replayDeadLetters(ingest.nc, { stream: stream2 })).toEqual({ replayed: 1, kept: 0 });
  await jsm.streams.delete(names.deadLetterStream);
  await ensureIngestStreams(ingest.nc, { stream: stream2 });
  await deadLetterOnce(undefined, stream2);
  expect((await jsm.streams.info(names.deadLetterStream)).state.last_seq).toBe(1);

  expect(await replayDeadLetters(ingest.nc, { stream: stream2 })).toEqual({ replayed: 1, kept: 0 });
  // The log holds it again (was: dropped as a duplicate of the first replay, and deleted).
  expect(await ingestLag(ingest.nc, stream2)).toEqual({ pending: 1, ackPending: 0 });
  expect((await jsm.streams.info(names.deadLetterStream)).state.messages).toBe(0);
}, 90_000);
