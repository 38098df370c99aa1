// Found by an adversarial review: with the raw eventId as Nats-Msg-Id, NATS trimmed header
// values, so "evt-1" and "evt-1 " were one message (the second call acknowledged as a duplicate
// and never stored), and an eventId with CR/LF could not be published at all (spooled, every
// replay failing again). Two DIFFERENT eventIds must never be deduplicated into one.
import { jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { natsIngestLog } from "../src/index.js";
import { observation } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

const ingest = useTestIngest();

const PAIRS: Array<[string, string]> = [
  ["evt-1", "evt-1 "],
  ["evt-2", " evt-2"],
  ["evt-3", "evt-3\t"],
  ["evt-4\r\nX: y", "evt-4"],
  ["évt-5", "évt-5 "],
];

for (const [a, b] of PAIRS) {
  it(`distinct eventIds ${JSON.stringify(a)} and ${JSON.stringify(b)} are both stored`, async () => {
    const stream = await ingest.fresh("msgid");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const results: unknown[] = [];
    for (const id of [a, b]) {
      try {
        results.push(await log.publish(observation(id)));
      } catch (error) {
        results.push(`threw: ${(error as Error).message}`);
      }
    }
    const info = await (await jetstreamManager(ingest.nc)).streams.info(stream);
    expect({ results, messages: info.state.messages }).toEqual({
      results: [{ duplicate: false }, { duplicate: false }],
      messages: 2,
    });
  });
}
