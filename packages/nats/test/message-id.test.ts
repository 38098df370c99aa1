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

/** What release 0.x (createHash, three updates) gave for `observation("evt-1:0:openai")`. */
const PINNED = "6gp_vuobkNHOkMi2rOY18Ni79JgLKCs1ZcwkAmOXJKk";

// Every gateway of a fleet must derive the same Nats-Msg-Id for the same call, whatever Latch
// release it runs (a rolling deploy), or the stream's deduplication window stops working across
// them: the id is SHA-256 of `<eventId>\n<observation hash>`, base64url, pinned here.
it("messageId is SHA-256 of eventId, newline, observation hash, base64url (stable across releases)", async () => {
  const { createHash } = await import("node:crypto");
  const { observationHash } = await import("@latch/core/adapter");
  const { messageId } = await import("../src/index.js");
  for (const id of ["evt-1:0:openai", "évt-😀:0:openai", "x".repeat(512)]) {
    const obs = observation(id);
    const expected = createHash("sha256")
      .update(obs.eventId)
      .update("\n")
      .update(observationHash(obs))
      .digest("base64url");
    expect(messageId(obs)).toBe(expected);
  }
  expect(messageId(observation("evt-1:0:openai"))).toBe(PINNED);
});

// Adversarial review (attack-fastparse): the one-shot hash of `${eventId}\n${hash}` against the
// three updates of release 0.x, for every well-formed eventId up to the schema's 512 units
// (astral, 2- and 3-byte characters, characters next to the newline) and attributes.
it("messageId is byte-identical to the three-update formula for any eventId parseObservation accepts", async () => {
  const { createHash } = await import("node:crypto");
  const fc = (await import("fast-check")).default;
  const { parseObservation } = await import("@latch/core");
  const { observationHash } = await import("@latch/core/adapter");
  const { messageId } = await import("../src/index.js");
  const old = (obs: Parameters<typeof messageId>[0]) =>
    createHash("sha256").update(obs.eventId).update("\n").update(observationHash(obs)).digest("base64url");
  const base = observation("evt");
  const ids = [
    "😀".repeat(256), // 512 units, 1024 bytes
    `${"x".repeat(510)}😀`, // 512 units ending in a pair
    "€".repeat(512),
    "é".repeat(512),
    "\uDBFF\uDFFF".repeat(256),
    "a\n",
    "\n",
    "😀\n😀",
    "\uFEFFid",
  ];
  for (const eventId of ids) {
    const obs = parseObservation({ ...base, eventId, attributes: { "😀": "€é\n", 7: "x" } });
    expect(obs.eventId.length).toBeLessThanOrEqual(512);
    expect(messageId(obs)).toBe(old(obs));
  }
  fc.assert(
    fc.property(
      fc.string({
        unit: fc.constantFrom("a", "\n", "é", "€", "😀", "\uFFFD", "\u2028"),
        minLength: 1,
        maxLength: 256,
      }),
      (eventId) => {
        const obs = parseObservation({ ...base, eventId });
        expect(messageId(obs)).toBe(old(obs));
      },
    ),
    { numRuns: 500 },
  );
  // Even an unparsed observation with a lone surrogate at the newline: the same bytes (U+FFFD).
  for (const eventId of ["a\uD83D", "\uDE00b"]) {
    const raw = { ...base, eventId } as Parameters<typeof messageId>[0];
    expect(messageId(raw)).toBe(old(raw));
  }
});
