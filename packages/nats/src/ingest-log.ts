import { createHash } from "node:crypto";
import { type IngestLog, type IngestPublishResult, LatchValidationError } from "@latch/core";
import { observationHash } from "@latch/core/adapter";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
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

/**
 * The {@link IngestLog} of `createLatch({ ingest })` on NATS JetStream: `publish` sends the
 * observation as JSON on the stream's subject with message id (`Nats-Msg-Id`) =
 * {@link messageId} (a hash of the eventId and the payload), and
 * resolves once the stream has stored it — a second publish of the same call inside the stream's
 * duplicate window is acknowledged as `duplicate` and stored nothing. It rejects when the
 * stream does not answer (stream missing, timeout) and, at once, while the connection is
 * closed or reconnecting: the facade then spools. An observation whose JSON is larger than the
 * server's `max_payload` less 4 KiB (kept for headers) is refused with `invalid_input` naming its
 * largest field: the server would refuse it on every attempt, so it is never spooled.
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
  const timeout = options.timeoutMs ?? 2_000;
  const js = jetstream(options.connection, { timeout });
  const encoder = new TextEncoder();
  // While the client is reconnecting, a publish would wait out its whole timeout on every
  // retry before the facade spools: fail at once instead (the spool replays later).
  let disconnected = false;
  void (async () => {
    for await (const status of options.connection.status()) {
      if (status.type === "disconnect") disconnected = true;
      else if (status.type === "reconnect") disconnected = false;
    }
  })().catch(() => undefined);
  return {
    async publish(observation): Promise<IngestPublishResult> {
      const body = encoder.encode(JSON.stringify(observation));
      // The server refuses it on every attempt ("max_payload size exceeded"): a retryable error
      // would spool it, and the spool replay would stop at it for good, holding back every
      // record spooled after it. Refused at record() instead, naming the largest field.
      const limit = maxBodyBytes(options.connection);
      if (body.length > limit)
        throw LatchValidationError.at(
          "UsageObservation",
          largestMember(observation),
          `the observation is ${body.length} bytes as JSON, more than the ${limit} bytes a message of this NATS server may carry (max_payload less ${HEADER_ROOM_BYTES} for headers)`,
        );
      if (disconnected || options.connection.isClosed())
        throw new Error(`NATS is unreachable: ${names.stream} not published`);
      const ack = await js.publish(names.subject, body, {
        msgID: messageId(observation),
        expect: { streamName: names.stream },
        timeout,
      });
      return { duplicate: ack.duplicate };
    },
  };
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
  return createHash("sha256")
    .update(observation.eventId)
    .update("\n")
    .update(observationHash(observation))
    .digest("base64url");
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
