// Found by an adversarial review (message sizes against the server's max_payload):
// - a valid observation bigger than a message may be was retried, spooled, and then stopped
//   every flushSpool() at itself for good, holding back every record spooled after it;
// - a message on the log as large as the server takes (published by anything with access to the
//   subject) could not be dead-lettered (its headers pushed it over max_payload): it was handed
//   back and redelivered forever, and the lag never drained;
// - an observation with 13,000 custom meters (under 1 MiB) cost a worker ~2.5 s of CPU to parse.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLatch, type IngestLog, parseObservation, type UsageObservation } from "@latch/core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEAD_LETTER_HEADERS,
  type IngestWorkerEvent,
  ingestLag,
  ingestNames,
  natsIngestLog,
  replayDeadLetters,
  runIngestWorker,
} from "../src/index.js";
import { memoryStores, observation, waitFor } from "./support/fixtures.js";
import { useTempDir, useTestIngest } from "./support/hooks.js";
import { startNatsServer, type TestNatsServer } from "./support/nats-server.js";

const root = useTempDir("latch-nats-size-");

/** Valid for core (64 attributes, each value 256 bytes), ~100 KB as JSON: U+0001 is escaped as \u0001. */
function bigObservation(eventId: string): UsageObservation {
  const attributes: Record<string, string> = {};
  for (let i = 0; i < 64; i++) attributes[`k${i}`] = "\u0001".repeat(256);
  return parseObservation({ ...observation(eventId), attributes });
}

describe("an observation larger than the server's max_payload", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    const config = join(root.path, "small.conf");
    await writeFile(config, "max_payload: 65536\n");
    server = await startNatsServer({ args: ["-c", config] });
  }, 90_000);
  afterAll(async () => {
    await server?.close();
  });
  // Registered after the server's hooks: connects once it runs, and is done before it stops.
  const ingest = useTestIngest({ connect: () => connect({ servers: server.url, timeout: 5_000 }) });
  const stream = ingest.stream("size");

  it("is refused at record() with invalid_input naming its largest field, not spooled", async () => {
    expect(ingest.nc.info?.max_payload).toBe(65_536);
    const big = bigObservation("size-big-1");
    expect(JSON.stringify(big).length).toBeGreaterThan(65_536);
    const spoolDir = join(root.path, "refused");
    const latch = createLatch({
      ...memoryStores(),
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir,
      onWarning: () => {},
    });
    const error = await latch.record(big).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "invalid_input" });
    expect((error as Error).message).toMatch(
      /^Invalid UsageObservation: attributes: the observation is \d+ bytes/,
    );
    expect((error as Error).message).toContain("max_payload");
    // Nothing spooled; a call of ordinary size is still accepted.
    expect(await latch.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
    expect((await latch.record(observation("size-small-1"))).status).toBe("accepted");
    await latch.close();
  }, 60_000);

  it("already spooled, it is set aside in rejected/ and the entries after it are published", async () => {
    const spoolDir = join(root.path, "spooled");
    // Spooled by a gateway whose log was down (or by a version without the size check).
    const down: IngestLog = { publish: () => Promise.reject(new Error("NATS is unreachable")) };
    const before = createLatch({
      ...memoryStores(),
      ingest: down,
      spoolDir,
      retry: { attempts: 1 },
      onWarning: () => {},
    });
    expect((await before.record(bigObservation("size-big-2"))).status).toBe("spooled");
    expect((await before.record(observation("size-small-2"))).status).toBe("spooled");
    await before.close();

    const warnings: string[] = [];
    const after = createLatch({
      ...memoryStores(),
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir,
      onWarning: (w) => warnings.push(`${w.code}: ${w.message}`),
    });
    // The start's flush (ready()) replays the spool. Before: it stopped at size-big-2 on every
    // flush, for good ({ replayed: 0, skipped: 0, remaining: 2 }), size-small-2 behind it.
    await after.ready();
    expect(await after.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
    expect(warnings.join("\n")).toMatch(
      /spool_replay_failed: .*size-big-2: Invalid UsageObservation: attributes/,
    );
    const rejected = await readdir(join(spoolDir, "rejected"));
    expect(rejected).toHaveLength(1);
    expect(await readFile(join(spoolDir, "rejected", rejected[0] as string), "utf8")).toContain("size-big-2");
    // size-small-1 of the test before, and size-small-2 now.
    expect(await ingestLag(ingest.nc, stream)).toEqual({ pending: 2, ackPending: 0 });
    await after.close();
  }, 60_000);
});

describe("a message as large as the server takes, on the log's subject", () => {
  const ingest = useTestIngest();
  const stream = ingest.stream("huge");

  it("is dead-lettered (its body cut to fit, the original length in a header), never redelivered forever", async () => {
    const names = ingestNames(stream);
    const js = jetstream(ingest.nc);
    const max = ingest.nc.info?.max_payload ?? 0;
    const garbage = new Uint8Array(max - 200).fill(0x78);
    await js.publish(names.subject, garbage);
    // A JSON observation with 13,000 custom meters (~950 KB): refused by the meter bound at once.
    const meters: Record<string, number> = { input_tokens: 1 };
    for (let i = 0; i < 13_000; i++) meters[`custom:m${String(i).padStart(60, "x")}`] = 1;
    const manyMeters = new TextEncoder().encode(JSON.stringify({ ...observation("huge-meters"), meters }));
    expect(manyMeters.length).toBeLessThan(max);
    await js.publish(names.subject, manyMeters);
    await js.publish(names.subject, new TextEncoder().encode(JSON.stringify(observation("huge-ok"))));

    const stores = memoryStores();
    const { observations } = stores;
    const events: IngestWorkerEvent[] = [];
    const worker = await runIngestWorker({
      ...stores,
      nats: ingest.nc,
      stream,
      retryDelayMs: 100,
      onEvent: (e) => events.push(e),
    });
    try {
      await waitFor("the log drained", () => ingest.drained(stream));
    } finally {
      await worker.stop();
    }
    expect(events.filter((e) => e.kind === "retry")).toEqual([]);
    expect(
      events
        .filter((e) => e.kind === "dead_lettered")
        .map((e) => (e as { code: string }).code)
        .sort(),
    ).toEqual(["invalid_input", "not_json"]);
    expect(observations.appended.get("huge-ok")).toBe(1);
    expect(observations.appended.has("huge-meters")).toBe(false);

    const jsm = await jetstreamManager(ingest.nc);
    const info = await jsm.streams.info(names.deadLetterStream);
    expect(info.state.messages).toBe(2);
    const first = await jsm.streams.getMessage(names.deadLetterStream, { seq: info.state.first_seq });
    const second = await jsm.streams.getMessage(names.deadLetterStream, { seq: info.state.last_seq });
    const cut = [first, second].find((m) => m?.header.get(DEAD_LETTER_HEADERS.code) === "not_json");
    expect(cut?.header.get(DEAD_LETTER_HEADERS.truncated)).toBe(String(garbage.length));
    expect(cut?.data.length).toBeLessThan(garbage.length);
    const meterLetter = [first, second].find(
      (m) => m?.header.get(DEAD_LETTER_HEADERS.code) === "invalid_input",
    );
    expect(meterLetter?.header.get(DEAD_LETTER_HEADERS.message)).toContain("meters: at most 64 meters");
    expect(meterLetter?.header.has(DEAD_LETTER_HEADERS.truncated)).toBe(false);

    // A cut body is not the message: a replay keeps it.
    expect(await replayDeadLetters(ingest.nc, { stream, codes: ["not_json"] })).toEqual({
      replayed: 0,
      kept: 2,
    });
  }, 90_000);
});
