/**
 * natsIngestLog's own request/reply for the publish acknowledgement (one reply subscription
 * per log, not js.publish), against the real server: what each kind of reply does to the
 * publish waiting for it, and what a closed or drained connection does to those still waiting.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { ensureIngestStreams, ingestNames, messageId, natsIngestLog } from "../src/index.js";
import { connectNats, freshStream, NATS_URL, observation, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";
import { startNatsServer, type TestNatsServer } from "./support/nats-server.js";

const ingest = useTestIngest();
/** Streams of no ingest log (plain JetStream streams), deleted after the tests. */
const extraStreams: string[] = [];
afterAll(async () => {
  const jsm = await jetstreamManager(ingest.nc);
  for (const s of extraStreams) await jsm.streams.delete(s).catch(() => false);
});

async function storedMessages(stream: string): Promise<{ messages: number; first: number; last: number }> {
  const { state } = await (await jetstreamManager(ingest.nc)).streams.info(stream);
  return { messages: state.messages, first: state.first_seq, last: state.last_seq };
}

/** A plain subscriber on the log's subject (no stream behind it): it keeps what it gets, answers nothing. */
async function silentResponder(connection: NatsConnection, stream: string): Promise<{ received: Msg[] }> {
  const received: Msg[] = [];
  connection.subscribe(ingestNames(stream).subject, { callback: (_err, msg) => void received.push(msg) });
  await connection.flush();
  return { received };
}

/** A connection of the test's own, closed when the test finishes (unless the test closed it). */
async function testConnection(): Promise<NatsConnection> {
  const connection = await connectNats();
  onTestFinished(async () => {
    if (!connection.isClosed()) await connection.close();
  });
  return connection;
}

/**
 * `count` publishes of a log on a connection of the test's own, each waiting for its ack: a silent
 * subscriber (on another connection of the test's own) took the messages, and no stream exists.
 */
async function waitingPublishes(label: string, count: number) {
  const stream = freshStream(label);
  const { received } = await silentResponder(await testConnection(), stream);
  const connection = await testConnection();
  const log = natsIngestLog({ connection, stream, timeoutMs: 30_000 });
  const waiting = Array.from({ length: count }, (_, i) =>
    outcome(log.publish(observation(`${label}-${i + 1}:0:openai`))),
  );
  await waitFor("the publishes to reach the subscriber", async () => received.length === count);
  return { stream, connection, log, waiting };
}

async function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (value) => value,
    (error: Error) => error,
  );
}

describe("natsIngestLog's acknowledgements", () => {
  it("acknowledges a publish, and the same message id again as a duplicate stored once", async () => {
    const stream = await ingest.fresh("ack");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const obs = observation("ack-1:0:openai");
    expect(await log.publish(obs)).toEqual({ duplicate: false });
    expect(await log.publish(obs)).toEqual({ duplicate: true });
    expect(await log.publish(observation("ack-2:0:openai"))).toEqual({ duplicate: false });
    expect(await storedMessages(stream)).toEqual({ messages: 2, first: 1, last: 2 });
    // What it sent: the same headers js.publish({ msgID, expect: { streamName } }) sent.
    const js = (await jetstreamManager(ingest.nc)).streams;
    const stored = await js.getMessage(stream, { seq: 1 });
    expect(stored?.header.get("Nats-Msg-Id")).toBe(messageId(obs));
    expect(stored?.header.get("Nats-Expected-Stream")).toBe(stream);
    expect(stored?.json()).toEqual(JSON.parse(JSON.stringify(obs)));
  });

  it("rejects at once when no stream captures the subject (no responders), not after its timeout", async () => {
    const stream = freshStream("nostream"); // never created
    const log = natsIngestLog({ connection: ingest.nc, stream, timeoutMs: 20_000 });
    const t0 = Date.now();
    await expect(log.publish(observation("none-1:0:openai"))).rejects.toThrow(
      new RegExp(
        `no stream listens on latch\\.ingest\\.${stream} \\(no responders\\).*${stream} not published`,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("rejects with the JetStream error when another stream captures the subject (wrong expected stream)", async () => {
    const stream = freshStream("expected"); // the log's stream: never created
    const other = freshStream("other");
    extraStreams.push(other);
    const jsm = await jetstreamManager(ingest.nc);
    await jsm.streams.add({ name: other, subjects: [ingestNames(stream).subject] });
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const error = (await outcome(log.publish(observation("exp-1:0:openai")))) as Error &
      Record<string, unknown>;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(
      new RegExp(
        `JetStream refused a publish on latch\\.ingest\\.${stream} to ${stream}: expected stream does not match`,
      ),
    );
    expect(error.message).toContain("err_code 10060");
    expect({ name: error.name, code: error.code, status: error.status, stream: error.stream }).toEqual({
      name: "JetStreamApiError",
      code: 10060,
      status: 400,
      stream,
    });
    expect((await jsm.streams.info(other)).state.messages).toBe(0);
  });

  it("times out when nothing acknowledges, and a late reply afterwards changes nothing", async () => {
    const stream = ingest.track("silent"); // no stream: a plain subscriber takes the messages
    const responder = await testConnection();
    const { received } = await silentResponder(responder, stream);
    const log = natsIngestLog({ connection: ingest.nc, stream, timeoutMs: 1_000 });
    const t0 = Date.now();
    await expect(log.publish(observation("late-1:0:openai"))).rejects.toThrow(
      `${stream} did not acknowledge a publish on latch.ingest.${stream} within 1000 ms`,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(received).toHaveLength(1);
    const first = received[0] as Msg;

    // A second publish waits; the first one's (late) ack must not answer it.
    const second = outcome(log.publish(observation("late-2:0:openai")));
    await waitFor("the second publish to reach the subscriber", async () => received.length === 2);
    expect(first.reply).not.toBe(received[1]?.reply);
    const ack = new TextEncoder().encode(JSON.stringify({ stream, seq: 1 }));
    first.respond(ack);
    // Nor does an ack forged for the next token of a counter (the tokens carry a random part).
    const inbox = (first.reply ?? "").replace(/[^.]+$/, "");
    for (const guess of ["1", "10", "100000000", "1zzzzzzzz"]) responder.publish(inbox + guess, ack);
    await responder.flush();
    expect(String(await second)).toMatch(/did not acknowledge a publish .* within 1000 ms/);

    // The log still works once the stream exists.
    await ensureIngestStreams(ingest.nc, { stream });
    expect(await log.publish(observation("late-3:0:openai"))).toEqual({ duplicate: false });
    expect((await storedMessages(stream)).messages).toBe(1);
  });

  it("rejects what waits at once when the connection is closed, and every publish after it", async () => {
    const { stream, connection, log, waiting } = await waitingPublishes("closing", 3);
    const t0 = Date.now();
    await connection.close();
    for (const result of await Promise.all(waiting))
      expect(String(result)).toContain(
        `NATS stopped delivering acknowledgements (the connection is closed or draining): ${stream} not published`,
      );
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(log.publish(observation("closing-4:0:openai"))).rejects.toThrow(
      `NATS is unreachable: ${stream} not published`,
    );
  });

  it("rejects what waits when the connection is drained, and every publish from the drain on", async () => {
    const { stream, connection, log, waiting } = await waitingPublishes("draining", 2);
    const t0 = Date.now();
    const drained = connection.drain();
    await expect(log.publish(observation("draining-3:0:openai"))).rejects.toThrow(
      `NATS is unreachable: ${stream} not published`,
    );
    for (const result of await Promise.all(waiting))
      expect(String(result)).toMatch(/NATS stopped delivering acknowledgements.* not published/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await drained;
  });

  it("acknowledges 1,000 concurrent publishes, each stored once under its own sequence", async () => {
    const stream = await ingest.fresh("many");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const results = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => log.publish(observation(`many-${i}:0:openai`))),
    );
    expect(results.filter((r) => r.duplicate === false)).toHaveLength(1_000);
    expect(await storedMessages(stream)).toEqual({ messages: 1_000, first: 1, last: 1_000 });
    // Again, concurrently: every one a duplicate, nothing more stored.
    const again = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => log.publish(observation(`many-${i}:0:openai`))),
    );
    expect(again.filter((r) => r.duplicate === true)).toHaveLength(1_000);
    expect((await storedMessages(stream)).messages).toBe(1_000);
  });

  it("publishes and deduplicates hostile eventIds (NUL, lone surrogate, CR/LF, 10 KB) by their hashed message id", async () => {
    const stream = await ingest.fresh("hostile");
    const log = natsIngestLog({ connection: ingest.nc, stream });
    const ids = ["nul\u0000id", "surrogate\ud800id", "crlf\r\nNats-Msg-Id: x", "x".repeat(10_240)];
    // parseObservation refuses NUL, lone surrogates and > 256 characters; the log is given them anyway.
    const hostile = (eventId: string) => ({ ...observation("hostile-base"), eventId });
    for (const id of ids) expect(await log.publish(hostile(id))).toEqual({ duplicate: false });
    for (const id of ids) expect(await log.publish(hostile(id))).toEqual({ duplicate: true });
    expect((await storedMessages(stream)).messages).toBe(ids.length);
  });

  it("two ingest logs on one connection each get their own acks (and errors)", async () => {
    const a = await ingest.fresh("twoA");
    const b = await ingest.fresh("twoB");
    const missing = freshStream("twoMissing");
    const logA = natsIngestLog({ connection: ingest.nc, stream: a });
    const logB = natsIngestLog({ connection: ingest.nc, stream: b });
    const logMissing = natsIngestLog({ connection: ingest.nc, stream: missing });
    const [ra, rb, rm] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, (_, i) => logA.publish(observation(`two-${i}:0:openai`)))),
      Promise.all(Array.from({ length: 100 }, (_, i) => logB.publish(observation(`two-${i}:0:openai`)))),
      outcome(logMissing.publish(observation("two-x:0:openai"))),
    ]);
    expect(ra.every((r) => !r.duplicate) && rb.every((r) => !r.duplicate)).toBe(true);
    expect(String(rm)).toContain(`no stream listens on latch.ingest.${missing}`);
    expect((await storedMessages(a)).messages).toBe(100);
    expect((await storedMessages(b)).messages).toBe(100);
  });

  it("rejects replies that are not an acknowledgement of its stream (garbage, other stream, status)", async () => {
    const stream = freshStream("garbage");
    const responder = await testConnection();
    const bodies: Array<string | undefined> = [
      "{ not json",
      "null",
      "[1,2]",
      JSON.stringify({ stream: "SOMEONE_ELSE", seq: 1 }),
      JSON.stringify({ stream, seq: "1" }),
      JSON.stringify({ error: { code: 503, err_code: 10077, description: "x".repeat(5_000) } }),
      undefined, // a 500 status message
    ];
    let n = 0;
    responder.subscribe(ingestNames(stream).subject, {
      callback: (_err, msg) => {
        const body = bodies[n++];
        if (body === undefined) {
          const h = headers(500, "Boom");
          msg.respond(new Uint8Array(), { headers: h });
        } else msg.respond(new TextEncoder().encode(body));
      },
    });
    await responder.flush();
    const log = natsIngestLog({ connection: ingest.nc, stream, timeoutMs: 10_000 });
    const messages: string[] = [];
    for (let i = 0; i < bodies.length; i++) {
      const result = await outcome(log.publish(observation(`garbage-${i}:0:openai`)));
      expect(result).toBeInstanceOf(Error);
      messages.push((result as Error).message);
    }
    expect(messages.slice(0, 5)).toEqual([
      `${stream} answered a publish with 10 bytes that are not JSON`,
      `${stream} answered a publish with no acknowledgement of it: not published`,
      `${stream} answered a publish with no acknowledgement of it: not published`,
      `${stream} answered a publish with no acknowledgement of it: not published`,
      `${stream} answered a publish with no acknowledgement of it: not published`,
    ]);
    expect(messages[5]).toMatch(/^JetStream refused a publish .*: x{200}… \(status 503, err_code 10077\)$/);
    expect(messages[6]).toBe(
      `NATS answered 500 Boom to a publish on latch.ingest.${stream}: ${stream} not published`,
    );
  });

  it("honours the connection's inboxPrefix for its reply subscription", async () => {
    const stream = await ingest.fresh("prefix");
    const connection = await connect({ servers: NATS_URL, inboxPrefix: "_LATCH_TEST_INBOX" });
    const seen: string[] = [];
    const spy = await connectNats();
    try {
      spy.subscribe(ingestNames(stream).subject, {
        callback: (_err, msg) => void seen.push(msg.reply ?? ""),
      });
      await spy.flush();
      const log = natsIngestLog({ connection, stream });
      expect(await log.publish(observation("prefix-1:0:openai"))).toEqual({ duplicate: false });
      await waitFor("the spy to see the publish", async () => seen.length === 1);
      expect(seen[0]).toMatch(/^_LATCH_TEST_INBOX\.[A-Za-z0-9]+\.0[a-z0-9]{8}$/);
    } finally {
      await spy.close();
      await connection.close();
    }
  });
});

describe("natsIngestLog on a user the server's permissions restrict (a nats-server of the test's own)", () => {
  let server: TestNatsServer | undefined;
  let dir: string | undefined;
  const stream = "T_PERM";
  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a publish the server refuses, and a reply subscription it refuses, reject at once, naming the violation", async () => {
    dir = await mkdtemp(join(tmpdir(), "latch-nats-perm-"));
    const config = join(dir, "server.conf");
    await writeFile(
      config,
      `authorization {
  users = [
    { user: admin, password: admin }
    { user: nopub, password: nopub, permissions: { publish: { deny: ["latch.ingest.${stream}"] } } }
    { user: nosub, password: nosub, permissions: { subscribe: { deny: ["_INBOX.>"] } } }
  ]
}
`,
    );
    server = await startNatsServer({ args: ["-c", config] });
    const admin = await connect({ servers: server.url, user: "admin", pass: "admin" });
    const nopub = await connect({ servers: server.url, user: "nopub", pass: "nopub" });
    const nosub = await connect({ servers: server.url, user: "nosub", pass: "nosub" });
    try {
      await ensureIngestStreams(admin, { stream });
      const t0 = Date.now();
      const denied = natsIngestLog({ connection: nopub, stream, timeoutMs: 20_000 });
      await expect(denied.publish(observation("perm-1:0:openai"))).rejects.toThrow(
        new RegExp(
          `NATS refused the publish on latch\\.ingest\\.${stream} \\(.*[Pp]ermissions [Vv]iolation.*\\): ${stream} not published`,
        ),
      );
      const deaf = natsIngestLog({ connection: nosub, stream, timeoutMs: 20_000 });
      // The message is stored, but its ack cannot come back: the publish fails (and is spooled, then deduplicated).
      await expect(deaf.publish(observation("perm-2:0:openai"))).rejects.toThrow(
        /NATS stopped delivering acknowledgements \(.*[Pp]ermissions [Vv]iolation.*\): T_PERM not published/,
      );
      // The next publish subscribes again, and is refused again at once.
      await expect(deaf.publish(observation("perm-3:0:openai"))).rejects.toThrow(
        /[Pp]ermissions [Vv]iolation/,
      );
      expect(Date.now() - t0).toBeLessThan(10_000);
      // The allowed user still publishes through its own log.
      const ok = natsIngestLog({ connection: admin, stream });
      expect(await ok.publish(observation("perm-2:0:openai"))).toEqual({ duplicate: true });
    } finally {
      await Promise.all([admin.close(), nopub.close(), nosub.close()]);
    }
  });
});

describe("natsIngestLog when its server goes away (a nats-server of the test's own)", () => {
  let server: TestNatsServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it("a publish waiting for its ack when the connection drops rejects at the disconnect, not after its timeout", async () => {
    server = await startNatsServer();
    const stream = "T_DROP";
    // A plain subscriber answers nothing: the publish waits for an ack that cannot come.
    const responder = await connect({ servers: server.url });
    const publisher = await connect({
      servers: server.url,
      reconnectTimeWait: 60_000,
      maxReconnectAttempts: -1,
    });
    try {
      const { received } = await silentResponder(responder, stream);
      const log = natsIngestLog({ connection: publisher, stream, timeoutMs: 120_000 });
      const waiting = outcome(log.publish(observation("drop-1:0:openai")));
      await waitFor("the message to reach the silent subscriber", async () => received.length === 1);
      const t0 = Date.now();
      await server.kill();
      const error = (await waiting) as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toBe(`NATS is unreachable: ${stream} not published`);
      // Well inside the 120 s timeout: at the disconnect (generous for a loaded machine).
      expect(Date.now() - t0).toBeLessThan(60_000);
      // And while disconnected, a new publish fails at once too.
      await expect(log.publish(observation("drop-2:0:openai"))).rejects.toThrow(/NATS is unreachable/);
    } finally {
      await Promise.all([responder.close(), publisher.close()]);
    }
  }, 180_000);
});
