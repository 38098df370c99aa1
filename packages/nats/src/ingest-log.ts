import { hash } from "node:crypto";
import { type IngestLog, type IngestPublishResult, LatchValidationError } from "@latch/core";
import { observationHash } from "@latch/core/adapter";
import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { ingestNames } from "./names.js";

/**
 * Bytes of a message's `max_payload` kept free for the headers a message carries: the
 * publish's own (`Nats-Msg-Id`, `Nats-Expected-Stream`) and, above all, a dead letter's
 * (`Latch-*`, up to ~2 KB), so that any message on the log can be dead-lettered whole.
 * @internal
 */
export const HEADER_ROOM_BYTES = 4_096;

/**
 * The largest message body the server takes with {@link HEADER_ROOM_BYTES} to spare
 * (`max_payload`, 1 MiB by default, less the header room). @internal
 */
export function maxBodyBytes(connection: NatsConnection): number {
  const max = connection.info?.max_payload ?? 1_048_576;
  return Math.max(0, max - HEADER_ROOM_BYTES);
}

export interface NatsIngestLogOptions {
  /** A connection from `connect()` of `@nats-io/transport-node`; the caller owns (and closes) it. */
  connection: NatsConnection;
  /** The ingest log's stream (see `ensureIngestStreams`). */
  stream: string;
  /**
   * How long one publish waits for the stream's acknowledgement before it fails (and the
   * facade retries, then spools). Default 2,000 ms.
   */
  timeoutMs?: number;
}

/** The headers `js.publish(subject, data, { msgID, expect: { streamName } })` sends. */
const MSG_ID_HEADER = "Nats-Msg-Id";
const EXPECTED_STREAM_HEADER = "Nats-Expected-Stream";

/** One publish waiting for its acknowledgement. */
interface Pending {
  resolve(result: IngestPublishResult): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A JetStream API error in a reply: `{ error: { code, err_code, description } }`. */
interface ApiError {
  code?: unknown;
  err_code?: unknown;
  description?: unknown;
}

const DUPLICATE: IngestPublishResult = Object.freeze({ duplicate: true });
const STORED: IngestPublishResult = Object.freeze({ duplicate: false });

/**
 * The {@link IngestLog} of `createLatch({ ingest })` on NATS JetStream: `publish` sends the
 * observation as JSON on the stream's subject with message id (`Nats-Msg-Id`) =
 * {@link messageId} (a hash of the eventId and the payload), and
 * resolves once the stream has stored it — a second publish of the same call inside the stream's
 * duplicate window is acknowledged as `duplicate` and stored nothing. It rejects when the
 * stream does not answer (stream missing, timeout) and, at once, while the connection is
 * closed, draining or reconnecting: the facade then spools. An observation whose JSON is larger
 * than the server's `max_payload` less 4 KiB (kept for headers) is refused with `invalid_input`
 * naming its largest field: the server would refuse it on every attempt, so it is never spooled.
 *
 * The acknowledgement comes back on one subscription of the log's own (an inbox wildcard,
 * made at the first publish and kept across reconnects), not through `js.publish`: see the
 * README ("How a publish waits for its acknowledgement").
 *
 * @example
 * import { connect } from "@nats-io/transport-node";
 * const connection = await connect({ servers: "nats://127.0.0.1:4222" });
 * await ensureIngestStreams(connection, { stream: "LATCH_INGEST" });
 * const latch = createLatch({ observations, rated, pricing,
 *   ingest: natsIngestLog({ connection, stream: "LATCH_INGEST" }) });
 * await latch.record(observation); // { status: "accepted", eventId, observation }
 */
export function natsIngestLog(options: NatsIngestLogOptions): IngestLog {
  const names = ingestNames(options.stream);
  const { stream, subject } = names;
  const timeout = options.timeoutMs ?? 2_000;
  const connection = options.connection;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const unreachable = () => new Error(`NATS is unreachable: ${stream} not published`);

  // While the client is reconnecting, a publish would wait out its whole timeout on every
  // retry before the facade spools: fail at once instead (the spool replays later).
  let disconnected = false;
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === "disconnect") {
        disconnected = true;
        // What waits for an ack now may never get one (the server may have stored the message
        // or not): fail it at once so the facade spools it, rather than after the timeout. A
        // replay of a message that was stored is the same message id (the stream drops it
        // inside its duplicate window) and the same event (the store answers already_exists).
        failAll(unreachable);
      } else if (status.type === "reconnect") disconnected = false;
      else if (status.type === "error") refused(status.error);
    }
  })().catch(() => undefined);

  // Publishes waiting for their acknowledgement, by reply token (in the order sent).
  const pending = new Map<string, Pending>();
  let sub: Subscription | undefined;
  let replyPrefix = "";
  let next = 0;
  let gone = false;

  /**
   * The server refused a publish on the subject (a permissions violation, one `-ERR` per
   * message): the oldest publish waiting fails at once, as nats-core's request did.
   */
  function refused(error: unknown): void {
    const e = error as { name?: unknown; operation?: unknown; subject?: unknown; message?: unknown };
    if (e?.name !== "PermissionViolationError" || e.operation !== "publish" || e.subject !== subject) return;
    for (const [token, waiting] of pending) {
      pending.delete(token);
      clearTimeout(waiting.timer);
      waiting.reject(
        new Error(`NATS refused the publish on ${subject} (${String(e.message)}): ${stream} not published`),
      );
      return;
    }
  }

  function failAll(error: () => Error): void {
    for (const waiting of pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(error());
    }
    pending.clear();
  }

  /** What a reply says: the ack's result, or why the stream did not store the message. */
  function outcome(msg: Msg): IngestPublishResult | Error {
    const status = msg.headers;
    if (status !== undefined && status.code >= 300) {
      if (status.code === 503 && msg.data.length === 0)
        return new Error(
          `no stream listens on ${subject} (no responders): is ${stream} created (ensureIngestStreams) and JetStream up? ${stream} not published`,
        );
      return new Error(
        `NATS answered ${clip(status.status)} to a publish on ${subject}: ${stream} not published`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(decoder.decode(msg.data));
    } catch {
      return new Error(`${stream} answered a publish with ${msg.data.length} bytes that are not JSON`);
    }
    if (typeof body === "object" && body !== null) {
      const reply = body as { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: unknown };
      if (typeof reply.error === "object" && reply.error !== null)
        return jetStreamError(stream, subject, reply.error as ApiError);
      if (reply.stream === stream && typeof reply.seq === "number")
        return reply.duplicate === true ? DUPLICATE : STORED;
    }
    return new Error(`${stream} answered a publish with no acknowledgement of it: not published`);
  }

  /** The log's reply subscription (`<inbox>.*`), made at the first publish and again if it ended. */
  function replies(): string {
    if (sub !== undefined) return replyPrefix;
    const inbox = createInbox(inboxPrefix(connection));
    const prefix = `${inbox}.`;
    let failure: Error | undefined;
    const current = connection.subscribe(`${inbox}.*`, {
      callback: (err, msg) => {
        if (err) {
          failure = err;
          return;
        }
        const token = msg.subject.slice(prefix.length);
        const waiting = pending.get(token);
        if (waiting === undefined) return; // timed out, or answered already: nobody waits for it
        pending.delete(token);
        clearTimeout(waiting.timer);
        let result: IngestPublishResult | Error;
        try {
          result = outcome(msg);
        } catch (error) {
          result = new Error(`${stream} sent a reply that could not be read`, { cause: error });
        }
        if (result instanceof Error) waiting.reject(result);
        else waiting.resolve(result);
      },
    });
    // Closed with the connection, drained with it, or refused by the server: nothing it
    // waited for can come now. The next publish subscribes again (unless the connection is gone).
    void current.closed.then(
      (err) => ended(current, err ?? failure),
      (err: unknown) => ended(current, err ?? failure),
    );
    sub = current;
    replyPrefix = prefix;
    return prefix;
  }

  function ended(current: Subscription, err: unknown): void {
    if (sub === current) sub = undefined;
    // Refused by the server (a permissions violation): the next publish subscribes again.
    // Otherwise the connection is closing or draining (its subscriptions end before
    // `isClosed()` turns true), for good: nothing subscribes on it again.
    if (!(err instanceof Error)) gone = true;
    const why = err instanceof Error ? err.message : "the connection is closed or draining";
    failAll(() => new Error(`NATS stopped delivering acknowledgements (${why}): ${stream} not published`));
  }

  return {
    publish(observation): Promise<IngestPublishResult> {
      let data: Uint8Array;
      try {
        data = encoder.encode(JSON.stringify(observation));
      } catch (error) {
        return Promise.reject(
          new Error(`${stream} not published: ${(error as Error).message}`, { cause: error }),
        );
      }
      // The server refuses it on every attempt ("max_payload size exceeded"): a retryable error
      // would spool it, and the spool replay would stop at it for good, holding back every
      // record spooled after it. Refused at record() instead, naming the largest field.
      const limit = maxBodyBytes(connection);
      if (data.length > limit)
        return Promise.reject(
          LatchValidationError.at(
            "UsageObservation",
            largestMember(observation),
            `the observation is ${data.length} bytes as JSON, more than the ${limit} bytes a message of this NATS server may carry (max_payload less ${HEADER_ROOM_BYTES} for headers)`,
          ),
        );
      if (disconnected || gone || connection.isClosed() || connection.isDraining())
        return Promise.reject(unreachable());
      // Unique (the counter) and not guessable from an earlier reply subject (the random part),
      // as nats-core's request tokens: a reply forged for a future token would answer a publish.
      const token = (next++).toString(36) + randomSuffix();
      let reply: string;
      const h = headers();
      try {
        reply = replies() + token;
        h.set(MSG_ID_HEADER, messageId(observation));
        h.set(EXPECTED_STREAM_HEADER, stream);
      } catch (error) {
        return Promise.reject(
          connection.isClosed() || connection.isDraining()
            ? unreachable()
            : new Error(`${stream} not published: ${(error as Error).message}`, { cause: error }),
        );
      }
      return new Promise<IngestPublishResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(token);
          reject(new Error(`${stream} did not acknowledge a publish on ${subject} within ${timeout} ms`));
        }, timeout);
        pending.set(token, { resolve, reject, timer });
        try {
          connection.publish(subject, data, { reply, headers: h });
        } catch (error) {
          pending.delete(token);
          clearTimeout(timer);
          reject(
            connection.isClosed() || connection.isDraining()
              ? unreachable()
              : new Error(`NATS refused the publish (${(error as Error).message}): ${stream} not published`, {
                  cause: error,
                }),
          );
        }
      });
    },
  };
}

/** 8 base-36 digits of `Math.random()` (as random as nats-core's request tokens); fixed width. */
function randomSuffix(): string {
  return Math.floor(Math.random() * 2_821_109_907_456 + 2_821_109_907_456)
    .toString(36)
    .slice(1);
}

/** The connection's `inboxPrefix` option (`_INBOX` when not set), as its own requests use. */
function inboxPrefix(connection: NatsConnection): string | undefined {
  const prefix = (connection as { options?: { inboxPrefix?: unknown } }).options?.inboxPrefix;
  return typeof prefix === "string" && prefix !== "" ? prefix : undefined;
}

/** Caps what a reply (the server, or anyone publishing to the inbox) puts in an error message. */
function clip(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * The error of a JetStream API error reply, with the fields `js.publish`'s `JetStreamApiError`
 * had: `code` (JetStream's `err_code`, e.g. 10060 for a wrong expected stream), `status` (its
 * HTTP-like `code`, e.g. 400) and `description`; plus `stream`.
 */
function jetStreamError(stream: string, subject: string, api: ApiError): Error {
  const description = clip(api.description ?? "no description");
  const error = new Error(
    `JetStream refused a publish on ${subject} to ${stream}: ${description} (status ${clip(api.code)}, err_code ${clip(api.err_code)})`,
  );
  error.name = "JetStreamApiError";
  return Object.assign(error, { code: api.err_code, status: api.code, description, stream });
}

/**
 * The stream's deduplication id of an observation: SHA-256 (base64url) of its eventId and its
 * payload hash (the stores' own idempotency hash). Not the raw eventId: NATS trims header
 * values (`"e1"` and `"e1 "` would be one message, and the second call lost) and refuses
 * CR/LF in them. With the payload in it, a second publish of the same call is deduplicated by
 * the stream, while a different payload under the same eventId reaches a worker, whose store
 * answers `idempotency_conflict` (dead-lettered, visible) instead of being dropped as a
 * duplicate.
 */
export function messageId(observation: Parameters<typeof observationHash>[0]): string {
  // One-shot (no Hash object per publish): the same bytes as hashing the three parts in turn.
  return hash("sha256", `${observation.eventId}\n${observationHash(observation)}`, "base64url");
}

/** The observation's member with the longest JSON: the field to name when the whole is too big. */
function largestMember(observation: object): string {
  let name = "";
  let size = -1;
  for (const [key, value] of Object.entries(observation)) {
    const length = JSON.stringify(value)?.length ?? 0;
    if (length > size) {
      name = key;
      size = length;
    }
  }
  return name;
}
