// Found by an adversarial review: with the raw eventId as Nats-Msg-Id, NATS trimmed header
// values, so "evt-1" and "evt-1 " were one message (the second call acknowledged as a duplicate
// and never stored), and an eventId with CR/LF could not be published at all (spooled, every
// replay failing again). Two DIFFERENT eventIds must never be deduplicated into one.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { deleteIngestStreams, ensureIngestStreams, natsIngestLog } from "../src/index.js";
import { connectNats, freshStream, observation } from "./support/fixtures.js";

let nc: NatsConnection;
const streams: string[] = [];
beforeAll(async () => {
  nc = await connectNats();
});
afterAll(async () => {
  for (const s of streams) await deleteIngestStreams(nc, s);
  await nc.drain();
});

const PAIRS: Array<[string, string]> = [
  ["evt-1", "evt-1 "],
  ["evt-2", " evt-2"],
  ["evt-3", "evt-3\t"],
  ["evt-4\r\nX: y", "evt-4"],
  ["évt-5", "évt-5 "],
];

for (const [a, b] of PAIRS) {
  it(`distinct eventIds ${JSON.stringify(a)} and ${JSON.stringify(b)} are both stored`, async () => {
    const stream = freshStream("msgid");
    streams.push(stream);
    await ensureIngestStreams(nc, { stream });
    const log = natsIngestLog({ connection: nc, stream });
    const results: unknown[] = [];
    for (const id of [a, b]) {
      try {
        results.push(await log.publish(observation(id)));
      } catch (error) {
        results.push(`threw: ${(error as Error).message}`);
      }
    }
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    expect({ results, messages: info.state.messages }).toEqual({
      results: [{ duplicate: false }, { duplicate: false }],
      messages: 2,
    });
  });
}
