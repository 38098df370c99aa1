import { parseObservation, type RecordResult, type UsageObservation } from "@latch/core";
import { createIngestRecorder, type IngestRecorderConfig } from "@latch/core/adapter";
import {
  AckPolicy,
  type Consumer,
  type ConsumerInfo,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { maxBodyBytes } from "./ingest-log.js";
import { type IngestNames, ingestNames } from "./names.js";
import { isConsumerNotFound, isNotFound } from "./streams.js";

/** Options of {@link runIngestWorker}: where to read, and the stores and pricing to write with. */
export interface IngestWorkerOptions extends IngestRecorderConfig {
  /** A connection from `connect()` of `@nats-io/transport-node`; the caller owns (and closes) it. */
  nats: NatsConnection;
  /** The ingest log's stream (see `ensureIngestStreams`). */
  stream: string;
  /**
   * The durable consumer every worker of the group shares: each message goes to one of them.
   * Created on first use. Default `latch-ingest`.
   */
  durable?: string;
  /** Messages per fetch. Default 256. */
  batchSize?: number;
  /**
   * Messages of a batch being stored at once. Default 64: on a pool, the Postgres store's group
   * commit shares one transaction among concurrent calls, so this is not a connection each (with
   * `groupCommit: false` or a single session, calls wait for a connection). Measured with the
   * gateway bench's ingest burst (2 workers, 10,000 messages, loopback Postgres + Redis + NATS on
   * 2 cores): 16 stored 4,500/s, 64 stored 5,400–6,100/s, 128 and 256 no more than 64.
   */
  concurrency?: number;
  /**
   * How long one fetch waits to fill its batch; at least 1,000 ms (the client's floor). Messages
   * are stored as they arrive, so this bounds how long `stop()` waits, not latency. The fetch
   * fails (and is retried) when the server's heartbeats, every half of it, stop for a whole
   * one: a longer fetch rides out longer event-loop stalls. Default 5,000 ms.
   */
  fetchExpiresMs?: number;
  /**
   * The consumer's ack wait when this worker creates it: a message a worker took and did not
   * acknowledge in this time (the worker died) is redelivered to another. Default 30,000 ms.
   * A live worker reports progress (`working()`) on every message it holds every third of the
   * ack wait, so a slow store delays a message but never hands it to a second worker.
   */
  ackWaitMs?: number;
  /** Redelivery delay after a failure (a store error), doubled per delivery up to 30 s. Default 1,000 ms. */
  retryDelayMs?: number;
  /** Stops the worker (as `stop()`). */
  signal?: AbortSignal;
  /** Hears of every message that failed or was dead-lettered, and of fetch errors. Default: `console.warn`. */
  onEvent?: (event: IngestWorkerEvent) => void;
}

/** What a worker reports through `onEvent`. Messages name the error code, never the payload. */
export type IngestWorkerEvent =
  /** A store error: the message goes back to the stream and is redelivered after `delayMs`. */
  | { kind: "retry"; seq: number; eventId?: string; delayMs: number; cause: unknown }
  /** Input no delivery can store: published to the dead-letter stream, then terminated. */
  | { kind: "dead_lettered"; seq: number; eventId?: string; code: string; message: string }
  /** A fetch failed (server down, consumer deleted); the worker tries again after a pause. */
  | { kind: "fetch_failed"; cause: unknown };

/** Counts since the worker started. */
export interface IngestWorkerStats {
  /** Fetches that returned at least one message. */
  batches: number;
  /** Messages received, redeliveries included. */
  messages: number;
  /** Messages acknowledged after their observation (and its rating) committed. */
  stored: number;
  /** Messages handed back for redelivery (store errors). */
  retried: number;
  /** Messages sent to the dead-letter stream. */
  deadLettered: number;
  /** Messages received as a redelivery (another worker died, or this one failed them). */
  redelivered: number;
}

/** A running worker. */
export interface IngestWorker {
  /**
   * Resolves once the worker has stopped (its last batch acknowledged or handed back). Rejects
   * when the NATS connection closed for good before `stop()` (closed by its owner, or out of
   * reconnect attempts): a closed connection never comes back, so the worker ends instead of
   * retrying forever; start it again on an open connection.
   */
  readonly done: Promise<IngestWorkerStats>;
  /** Counts so far. */
  stats(): IngestWorkerStats;
  /** Finishes the batch in hand and stops; resolves with the final counts. */
  stop(): Promise<IngestWorkerStats>;
}

/** Headers of a dead letter: why it was refused, where it came from. */
export const DEAD_LETTER_HEADERS = {
  code: "Latch-Error-Code",
  message: "Latch-Error",
  stream: "Latch-Stream",
  seq: "Latch-Stream-Seq",
  /**
   * On a dead letter whose body was cut to fit the server's `max_payload` beside its headers (a
   * message published to the log by something other than Latch, as large as the server takes):
   * the original body's length in bytes. Such a dead letter is not the original message.
   */
  truncated: "Latch-Truncated-From",
} as const;

/**
 * Starts an ingest worker: a member of the consumer group `durable` on the ingest log's stream.
 * It fetches observations in batches and records each through the facade's own record path
 * (`createIngestRecorder`: append idempotent by eventId, price, rate, store the rated record,
 * burn credits), and acknowledges a message only after that committed. A store error hands the
 * message back (`nak`, redelivered with backoff); a message no delivery can store (not JSON,
 * not an observation, an eventId stored with another payload, a corrupt stored record) is
 * published to the dead-letter stream with its error code and only then terminated. A worker
 * that dies mid-batch loses nothing: its unacknowledged messages are redelivered after the
 * consumer's ack wait, and storing one twice stores it once.
 *
 * @example
 * // maxReconnectAttempts: -1: the client's default gives up after ~20 s without the server,
 * // and the worker then ends (`done` rejects).
 * const connection = await connect({ servers: "nats://127.0.0.1:4222", maxReconnectAttempts: -1 });
 * await ensureIngestStreams(connection, { stream: "LATCH_INGEST" });
 * const worker = await runIngestWorker({ nats: connection, stream: "LATCH_INGEST",
 *   observations, rated, pricing });
 * process.on("SIGTERM", () => void worker.stop());
 * // A worker whose connection closed for good has stopped consuming: exit, to be restarted.
 * worker.done.catch((error) => { console.error(error); process.exit(1); });
 */
export async function runIngestWorker(options: IngestWorkerOptions): Promise<IngestWorker> {
  const names = ingestNames(options.stream);
  const durable = options.durable ?? "latch-ingest";
  const batchSize = positive(options.batchSize ?? 256, "batchSize");
  const concurrency = positive(options.concurrency ?? 64, "concurrency");
  const fetchExpiresMs = positive(options.fetchExpiresMs ?? 5_000, "fetchExpiresMs");
  if (fetchExpiresMs < 1_000)
    throw new TypeError("Invalid ingest worker options: fetchExpiresMs: expected at least 1000");
  const retryDelayMs = positive(options.retryDelayMs ?? 1_000, "retryDelayMs");
  const listener = options.onEvent ?? defaultOnEvent;
  // A listener that throws must not change what the worker does with a message (a throw from
  // it used to fail the message's handling and, from the fetch loop, end the worker).
  const onEvent = (event: IngestWorkerEvent) => {
    try {
      listener(event);
    } catch {
      // reported nowhere else: the listener is the report
    }
  };
  const recorder = createIngestRecorder(options);
  const js = jetstream(options.nats);
  const { consumer, ackWaitMs } = await durableConsumer(
    options.nats,
    names,
    durable,
    options.ackWaitMs ?? 30_000,
  );
  // Messages taken and not yet acknowledged or handed back: while a slow store (or a full
  // `concurrency`) keeps one waiting, `working()` resets its ack wait, so the server does not
  // redeliver it to another worker as if this one had died.
  const inHand = new Set<JsMsg>();
  const progressEveryMs = Math.max(500, Math.floor(ackWaitMs / 3));

  const stats: IngestWorkerStats = {
    batches: 0,
    messages: 0,
    stored: 0,
    retried: 0,
    deadLettered: 0,
    redelivered: 0,
  };
  let stopped = false;
  const stopSignal = new AbortController();
  const stopNow = () => {
    stopped = true;
    stopSignal.abort();
  };
  options.signal?.addEventListener("abort", stopNow, { once: true });
  if (options.signal?.aborted) stopNow();

  async function deadLetter(m: JsMsg, eventId: string | undefined, code: string, message: string) {
    const h = headers();
    h.set(DEAD_LETTER_HEADERS.code, code);
    h.set(DEAD_LETTER_HEADERS.message, message.replace(/[\r\n]+/g, " ").slice(0, 512));
    h.set(DEAD_LETTER_HEADERS.stream, names.stream);
    h.set(DEAD_LETTER_HEADERS.seq, String(m.seq));
    // A message as large as the server takes leaves no room for these headers: its publish
    // would fail ("max_payload size exceeded") on every delivery, and the message would be
    // redelivered forever instead of dead-lettered. Latch never publishes one that large
    // (natsIngestLog keeps the header room free); what is cut here is someone else's.
    const room = maxBodyBytes(options.nats);
    let body = m.data;
    if (body.length > room) {
      h.set(DEAD_LETTER_HEADERS.truncated, String(body.length));
      body = body.subarray(0, room);
    }
    // Keyed by the source message, so a dead letter published twice (a crash before term) is
    // kept once: its sequence and its time in the stream (the same on every redelivery). Not the
    // sequence alone: a stream deleted and created again numbers from 1 again, and the dead
    // letter of its new message 1 would be dropped as a duplicate of the old one's, and the
    // message terminated with no trace.
    await js.publish(names.deadLetterSubject, body, {
      msgID: `${names.stream}:${m.seq}:${m.timestampNanos}`,
      headers: h,
      expect: { streamName: names.deadLetterStream },
    });
    m.term(); // no reason: servers before 2.10 ignore "+TERM <reason>" and redeliver
    stats.deadLettered++;
    onEvent({ kind: "dead_lettered", seq: m.seq, ...(eventId ? { eventId } : {}), code, message });
  }

  function retry(m: JsMsg, eventId: string | undefined, cause: unknown) {
    const delayMs = Math.min(30_000, retryDelayMs * 2 ** Math.min(15, m.info.deliveryCount - 1));
    m.nak(delayMs);
    stats.retried++;
    onEvent({ kind: "retry", seq: m.seq, ...(eventId ? { eventId } : {}), delayMs, cause });
  }

  async function handle(m: JsMsg): Promise<void> {
    stats.messages++;
    if (m.redelivered) stats.redelivered++;
    let observation: UsageObservation;
    try {
      observation = parseObservation(JSON.parse(new TextDecoder().decode(m.data)));
    } catch (error) {
      const code = error instanceof SyntaxError ? "not_json" : codeOf(error);
      const message = error instanceof SyntaxError ? "the message is not JSON" : messageOf(error);
      await deadLetter(m, undefined, code, message).catch((e: unknown) => retry(m, undefined, e));
      return;
    }
    const eventId = observation.eventId;
    let result: RecordResult;
    try {
      result = await recorder.record(observation);
    } catch (error) {
      if (recorder.permanent(error))
        await deadLetter(m, eventId, codeOf(error), messageOf(error)).catch((e: unknown) =>
          retry(m, eventId, e),
        );
      else retry(m, eventId, error);
      return;
    }
    // Stored but not rated because a store failed: a redelivery finds it stored and rates it.
    if (result.status === "unpriced" && result.reason === "store_error") {
      retry(m, eventId, new Error(`rating ${eventId} hit a store error`));
      return;
    }
    m.ack();
    stats.stored++;
  }

  async function processFetch(): Promise<void> {
    const messages = await consumer.fetch({ max_messages: batchSize, expires: fetchExpiresMs });
    // Messages are taken off the fetch as they arrive (never waiting for a store call: a fetch
    // whose batch is full gets no more heartbeats, and one left unread would be declared
    // dead) and stored at most `concurrency` at a time.
    const handled: Promise<void>[] = [];
    const limit = slots(concurrency);
    const progress = setInterval(() => {
      for (const m of inHand) m.working();
    }, progressEveryMs);
    try {
      for await (const m of messages) {
        inHand.add(m);
        handled.push(limit(() => handle(m)).finally(() => inHand.delete(m)));
      }
    } finally {
      // A fetch that fails (missed heartbeats) still lets the messages in hand finish.
      try {
        await Promise.allSettled(handled);
      } finally {
        clearInterval(progress);
      }
    }
    if (handled.length > 0) {
      stats.batches++;
      await options.nats.flush(); // the acks of this batch reach the server before the next fetch
    }
  }

  async function loop(): Promise<IngestWorkerStats> {
    let failures = 0;
    while (!stopped) {
      try {
        await processFetch();
        failures = 0;
      } catch (error) {
        if (stopped) break;
        if (options.nats.isClosed()) {
          // A closed connection never reconnects (closed by its owner, or out of reconnect
          // attempts): retrying would spin forever with nothing consumed. `done` rejects, so a
          // supervisor starts the worker again; the messages it held are redelivered.
          options.signal?.removeEventListener("abort", stopNow);
          throw new Error(
            `ingest worker on ${names.stream}: the NATS connection is closed (by its owner, or out of reconnect attempts); start the worker again on an open connection`,
            { cause: error },
          );
        }
        onEvent({ kind: "fetch_failed", cause: error });
        failures++;
        await pause(Math.min(5_000, 100 * 2 ** Math.min(6, failures)), stopSignal.signal);
      }
    }
    options.signal?.removeEventListener("abort", stopNow);
    return { ...stats };
  }

  const done = loop();
  // Rejects only when the connection closed for good (see loop): handled here, so a process
  // that never awaits `done` is not ended by an unhandled rejection; whoever awaits it sees it.
  done.catch(() => undefined);
  return {
    done,
    stats: () => ({ ...stats }),
    stop() {
      stopNow();
      return done;
    },
  };
}

/**
 * Messages of the consumer group not yet stored: `pending` not delivered yet, `ackPending`
 * delivered to a worker and not acknowledged. Their sum is the ingest lag. Before any worker
 * has created the group's consumer (gateways publishing, workers not started yet), every
 * message of the stream is pending: the work-queue stream keeps each until a worker
 * acknowledges it. A stream that does not exist is an error (JetStream's "stream not found"), and
 * so is a `durable` the stream does not have while it has another consumer (a misspelt name:
 * the message names the consumers it has).
 *
 * @example
 * const { pending, ackPending } = await ingestLag(connection, "LATCH_INGEST");
 */
export async function ingestLag(
  connection: NatsConnection,
  stream: string,
  durable = "latch-ingest",
): Promise<{ pending: number; ackPending: number }> {
  const jsm = await jetstreamManager(connection);
  const names = ingestNames(stream);
  try {
    const info = await jsm.consumers.info(names.stream, durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  } catch (error) {
    if (!isConsumerNotFound(error)) throw error;
  }
  // No such consumer. Read after the miss: a worker creating it meanwhile may have taken some
  // messages, which the stream still counts until they are acknowledged (an upper bound).
  const info = await jsm.streams.info(names.stream);
  if (info.state.consumer_count > 0) {
    // The stream has a consumer, just not this one: a misspelt durable, not "no worker yet"
    // (a work-queue stream's consumers cannot overlap, so the group's would be the only one).
    const existing: string[] = [];
    for await (const c of jsm.consumers.list(names.stream)) existing.push(c.name);
    // A worker may have created it between the two reads: then it is the group's after all.
    if (existing.includes(durable)) return ingestLag(connection, stream, durable);
    throw new Error(
      `ingestLag: consumer ${JSON.stringify(durable)} not found on stream ${names.stream} (its consumers: ${existing.map((n) => JSON.stringify(n)).join(", ") || "none"})`,
    );
  }
  return { pending: info.state.messages, ackPending: 0 };
}

/**
 * The group's durable pull consumer, created when missing (every worker may race to create it),
 * and its ack wait as the server has it (the creator's, when another worker created it).
 */
async function durableConsumer(
  connection: NatsConnection,
  names: IngestNames,
  durable: string,
  ackWaitMs: number,
): Promise<{ consumer: Consumer; ackWaitMs: number }> {
  const jsm = await jetstreamManager(connection);
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.info(names.stream, durable);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    try {
      info = await jsm.consumers.add(names.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(positive(ackWaitMs, "ackWaitMs")),
        filter_subject: names.subject,
      });
    } catch (addError) {
      // Another worker created it first: use theirs.
      info = await jsm.consumers.info(names.stream, durable).catch(() => Promise.reject(addError));
    }
  }
  const consumer = await jetstream(connection).consumers.get(names.stream, durable);
  const serverAckWaitMs = Math.floor(Number(info.config.ack_wait ?? 0) / 1_000_000);
  return { consumer, ackWaitMs: serverAckWaitMs > 0 ? serverAckWaitMs : ackWaitMs };
}

/** Runs the tasks given to it at most `n` at a time, in order. */
function slots(n: number): (task: () => Promise<void>) => Promise<void> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

function positive(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new TypeError(`Invalid ingest worker options: ${field}: expected a positive integer`);
  return value;
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : "error";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : "unknown error";
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

function defaultOnEvent(event: IngestWorkerEvent): void {
  if (event.kind === "dead_lettered")
    console.warn(`[latch-ingest] message ${event.seq} dead-lettered: ${event.code}: ${event.message}`);
  else if (event.kind === "fetch_failed")
    console.warn(`[latch-ingest] fetch failed: ${messageOf(event.cause)}`);
  else
    console.warn(
      `[latch-ingest] message ${event.seq} retried in ${event.delayMs} ms: ${messageOf(event.cause)}`,
    );
}
