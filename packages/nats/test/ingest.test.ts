import { join } from "node:path";
import { createLatch, type RecordResult } from "@latch/core";
import { CorruptRecordError } from "@latch/core/errors";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import {
  DEAD_LETTER_HEADERS,
  ensureIngestStreams,
  ingestLag,
  ingestNames,
  natsIngestLog,
} from "../src/index.js";
import {
  COST_PER_CALL,
  connectNats,
  DAY,
  freshStream,
  memoryStores,
  NATS_URL,
  observation,
  waitFor,
} from "./support/fixtures.js";
import { useTempDir, useTestIngest } from "./support/hooks.js";
import { startTcpProxy } from "./support/tcp-proxy.js";

const ingest = useTestIngest();
const spoolRoot = useTempDir("latch-nats-");

describe("natsIngestLog with createLatch({ ingest })", () => {
  it("answers accepted once the stream holds the observation, and a duplicate publish is stored once", async () => {
    const stream = await ingest.fresh("dup");
    const stores = memoryStores();
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const latch = createLatch({
      ...stores,
      ingest: log,
      spoolDir: join(spoolRoot.path, "dup"),
      onWarning: () => {},
    });
    const obs = observation("dup-1:0:openai");

    const first = await latch.record(obs);
    expect(first).toEqual({ status: "accepted", eventId: "dup-1:0:openai", observation: obs });
    // Published again (a gateway retry): the stream acknowledges it as a duplicate and keeps one.
    expect(await log.publish(obs)).toEqual({ duplicate: true });
    expect((await latch.record(obs)).status).toBe("accepted");
    const info = await (await jetstreamManager(ingest.nc)).streams.info(stream);
    expect(info.state.messages).toBe(1);
    // Nothing is stored until a worker has run.
    expect(await stores.observations.get("dup-1:0:openai")).toBeUndefined();

    const worker = await ingest.startWorker({ ...stores, nats: ingest.nc, stream });
    await waitFor("the worker to store the call", async () => (await latch.summary(DAY))[0]?.requests === 1);
    await waitFor("the consumer to drain", () => ingest.drained(stream));
    expect(stores.observations.appended.get("dup-1:0:openai")).toBe(1);
    expect(await latch.summary(DAY)).toMatchObject([{ requests: 1, costByCurrency: { USD: COST_PER_CALL } }]);
    expect((await worker.stop()).stored).toBe(1);
    await latch.close();
  });

  it("spools while the stream is missing, and a later flushSpool publishes what was spooled", async () => {
    const stream = ingest.track("outage"); // not created yet: every publish fails
    const stores = memoryStores();
    const warnings: string[] = [];
    const latch = createLatch({
      ...stores,
      ingest: natsIngestLog({ connection: ingest.nc, stream, timeoutMs: 1_000 }),
      retry: { attempts: 2, baseDelayMs: 10 },
      spoolDir: join(spoolRoot.path, "outage"),
      onWarning: (w) => warnings.push(w.code),
    });
    await latch.ready();
    const results: RecordResult[] = [];
    for (let i = 0; i < 5; i++) results.push(await latch.record(observation(`outage-${i}:0:openai`)));
    expect(results.map((r) => r.status)).toEqual(["spooled", "spooled", "spooled", "spooled", "spooled"]);
    expect(warnings).toContain("spooled");

    // While the stream is still missing, a flush keeps everything spooled.
    expect(await latch.flushSpool()).toMatchObject({ replayed: 0, remaining: 5 });

    await ensureIngestStreams(ingest.nc, { stream });
    expect(await latch.flushSpool()).toMatchObject({ replayed: 5, remaining: 0 });
    expect((await (await jetstreamManager(ingest.nc)).streams.info(stream)).state.messages).toBe(5);

    await ingest.startWorker({ ...stores, nats: ingest.nc, stream });
    await waitFor(
      "the worker to store the spooled calls",
      async () => (await latch.summary(DAY))[0]?.requests === 5,
    );
    expect(await latch.summary(DAY)).toMatchObject([{ requests: 5, costByCurrency: { USD: "0.0225" } }]);
    for (let i = 0; i < 5; i++) expect(stores.observations.appended.get(`outage-${i}:0:openai`)).toBe(1);
    await latch.close();
  });

  it("spools when the NATS connection is closed, and replays through a working one", async () => {
    const stream = await ingest.fresh("closed");
    const stores = memoryStores();
    const closed = await connectNats();
    await closed.close();
    const spoolDir = join(spoolRoot.path, "closed");
    const down = createLatch({
      ...stores,
      ingest: natsIngestLog({ connection: closed, stream }),
      retry: { attempts: 2, baseDelayMs: 10 },
      spoolDir,
      onWarning: () => {},
    });
    expect((await down.record(observation("closed-1:0:openai"))).status).toBe("spooled");
    await down.close();
    // The next process (or instance) on the same spool replays into the log on start.
    const up = createLatch({
      ...stores,
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir,
      onWarning: () => {},
    });
    await up.ready();
    expect((await (await jetstreamManager(ingest.nc)).streams.info(stream)).state.messages).toBe(1);
    await up.close();
  });

  it("spools without waiting out timeouts while NATS is unreachable, and publishes the spool once it is back", async () => {
    const stream = await ingest.fresh("away");
    const target = new URL(NATS_URL);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 4222));
    const connection = await connect({
      servers: proxy.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    const stores = memoryStores();
    const latch = createLatch({
      ...stores,
      ingest: natsIngestLog({ connection, stream }),
      spoolDir: join(spoolRoot.path, "away"),
      onWarning: () => {},
    });
    try {
      expect((await latch.record(observation("away-0:0:openai"))).status).toBe("accepted");
      await proxy.down();
      // The client notices the lost server; from then on each record spools without waiting.
      await waitFor("the spool to take a call", async () => {
        const r = await latch.record(observation("away-1:0:openai"));
        return r.status === "spooled";
      });
      // Without waiting out the publish timeout (2 s) on each of the 4 attempts (≥ 6 s).
      const t0 = Date.now();
      expect((await latch.record(observation("away-2:0:openai"))).status).toBe("spooled");
      expect(Date.now() - t0).toBeLessThan(4_000);
      await proxy.up();
      await waitFor("the client to reconnect", async () => (await latch.flushSpool()).remaining === 0);
      expect((await (await jetstreamManager(ingest.nc)).streams.info(stream)).state.messages).toBe(3);
    } finally {
      await latch.close();
      await connection.close();
      await proxy.close();
    }
  });

  it("sends poison messages to the dead-letter stream with their error code, and stores the rest", async () => {
    const stream = await ingest.fresh("poison");
    const names = ingestNames(stream);
    const stores = memoryStores();
    const js = jetstream(ingest.nc);
    const encode = (o: unknown) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o));
    const good = observation("poison-ok:0:openai");
    await natsIngestLog({ connection: ingest.nc, stream }).publish(good);
    await js.publish(names.subject, encode("{ not json"), { msgID: "p-1" });
    await js.publish(
      names.subject,
      encode({ ...good, eventId: "poison-bad:0:openai", meters: { input_tokens: -1 } }),
      {
        msgID: "p-2",
      },
    );
    // The same eventId with another payload, past the duplicate window (another message id).
    await js.publish(names.subject, encode(observation("poison-ok:0:openai", { outputTokens: 999 })), {
      msgID: "p-3",
    });

    const worker = await ingest.startWorker({ ...stores, nats: ingest.nc, stream, concurrency: 1 });
    await waitFor(
      "the consumer to drain",
      async () => worker.stats().stored + worker.stats().deadLettered === 4,
    );
    await waitFor("the consumer to drain", () => ingest.drained(stream));
    expect(worker.stats()).toMatchObject({ stored: 1, deadLettered: 3 });

    const jsm = await jetstreamManager(ingest.nc);
    const dead = await jsm.streams.info(names.deadLetterStream);
    expect(dead.state.messages).toBe(3);
    const codes: string[] = [];
    for (let seq = dead.state.first_seq; seq <= dead.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(names.deadLetterStream, { seq });
      codes.push(m?.header.get(DEAD_LETTER_HEADERS.code) ?? "");
      expect(m?.header.get(DEAD_LETTER_HEADERS.stream)).toBe(stream);
      // The message text names the error, never the payload.
      expect(m?.header.get(DEAD_LETTER_HEADERS.message)).not.toContain("999");
    }
    expect(codes.sort()).toEqual(["idempotency_conflict", "invalid_input", "not_json"]);
    expect((await stores.observations.get("poison-ok:0:openai"))?.meters.output_tokens).toBe(200);
    expect(await stores.observations.get("poison-bad:0:openai")).toBeUndefined();
  });

  it("two workers of one consumer group store every one of 3,000 events exactly once", async () => {
    const stream = await ingest.fresh("group");
    const stores = memoryStores();
    const latch = createLatch({
      ...stores,
      ingest: natsIngestLog({ connection: ingest.nc, stream }),
      spoolDir: join(spoolRoot.path, "group"),
      onWarning: () => {},
    });
    const second = await connectNats();
    try {
      const a = await ingest.startWorker({ ...stores, nats: ingest.nc, stream, batchSize: 100 });
      const b = await ingest.startWorker({ ...stores, nats: second, stream, batchSize: 100 });
      const total = 3_000;
      const ids = Array.from({ length: total }, (_, i) => `group-${i}:0:openai`);
      for (let i = 0; i < total; i += 64) {
        const results = await Promise.all(ids.slice(i, i + 64).map((id) => latch.record(observation(id))));
        expect(results.every((r) => r.status === "accepted")).toBe(true);
      }
      await waitFor(
        "both workers to store every event",
        async () => (await latch.summary(DAY))[0]?.requests === total,
        120_000,
      );
      await waitFor("the consumer to drain", () => ingest.drained(stream));
      const sa = await a.stop();
      const sb = await b.stop();
      expect(sa.stored).toBeGreaterThan(0);
      expect(sb.stored).toBeGreaterThan(0);
      expect(sa.stored + sb.stored).toBeGreaterThanOrEqual(total);
      expect(stores.observations.appended.size).toBe(total);
      for (const id of ids) expect(stores.observations.appended.get(id)).toBe(1);
      // 3,000 × 0.0045 USD, exactly.
      expect(await latch.summary(DAY)).toMatchObject([{ requests: total, costByCurrency: { USD: "13.5" } }]);
    } finally {
      await second.drain();
      await latch.close();
    }
  }, 180_000);
});

describe("a stored rated record that does not parse", () => {
  it("is dead-lettered as corrupt_record (the observation stays stored), not redelivered for as long as the message lives", async () => {
    const stream = await ingest.fresh("corrupt");
    const names = ingestNames(stream);
    const stores = memoryStores();
    // A rated store whose record of one event does not parse (a fault no real store here can be
    // made to produce on demand): what the Postgres store throws for a payload that fails its schema.
    const bad = "corrupt-1:0:openai";
    const rated = new Proxy(stores.rated, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (key === "current")
          return (eventId: string, signal?: AbortSignal) =>
            eventId === bad
              ? Promise.reject(new CorruptRecordError({ id: bad, reason: "payload does not parse" }))
              : target.current(eventId, signal);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const log = natsIngestLog({ connection: ingest.nc, stream });
    await log.publish(observation(bad));
    await log.publish(observation("corrupt-ok:0:openai"));
    const worker = await ingest.startWorker({
      ...stores,
      rated,
      nats: ingest.nc,
      stream,
      concurrency: 1,
      retryDelayMs: 50,
    });
    await waitFor(
      "both messages handled",
      async () => worker.stats().stored + worker.stats().deadLettered === 2,
    );
    await waitFor("the consumer to drain", () => ingest.drained(stream));
    expect(worker.stats()).toMatchObject({ stored: 1, deadLettered: 1, retried: 0 });
    const jsm = await jetstreamManager(ingest.nc);
    const dead = await jsm.streams.getMessage(names.deadLetterStream, { seq: 1 });
    expect(dead?.header.get(DEAD_LETTER_HEADERS.code)).toBe("corrupt_record");
    expect(await stores.observations.get(bad)).toBeDefined();
    expect((await stores.rated.current("corrupt-ok:0:openai"))?.total).toBeDefined();
  });
});

describe("ingestLag", () => {
  it("before any worker created the group's consumer: every message of the stream is pending", async () => {
    const stream = await ingest.fresh("lag-no-consumer");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    for (let i = 0; i < 3; i++) await log.publish(observation(`lag-early-${i}`));
    expect(await ingestLag(ingest.nc, stream)).toEqual({ pending: 3, ackPending: 0 });
    // Once a worker runs, the consumer's own figures, down to 0.
    const stores = memoryStores();
    await ingest.startWorker({ ...stores, nats: ingest.nc, stream });
    await waitFor("the consumer to drain", () => ingest.drained(stream));
    expect(await ingestLag(ingest.nc, stream)).toEqual({ pending: 0, ackPending: 0 });
  });

  it("a misspelt durable on a stream whose group consumer exists is an error naming both", async () => {
    const stream = await ingest.fresh("lag-misspelt");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    await log.publish(observation("lag-misspelt-0"));
    const stores = memoryStores();
    await ingest.startWorker({ ...stores, nats: ingest.nc, stream });
    await waitFor("the consumer to drain", () => ingest.drained(stream));
    await expect(ingestLag(ingest.nc, stream, "latch-ingset")).rejects.toThrow(
      /consumer "latch-ingset" not found on stream .*its consumers: "latch-ingest"/,
    );
    expect(await ingestLag(ingest.nc, stream, "latch-ingest")).toEqual({ pending: 0, ackPending: 0 });
  });

  it("a stream that does not exist is still an error", async () => {
    await expect(ingestLag(ingest.nc, freshStream("lag-missing"))).rejects.toThrow(/stream not found/i);
  });
});
