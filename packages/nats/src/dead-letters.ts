import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ingestNames } from "./names.js";
import { DEAD_LETTER_HEADERS } from "./worker.js";

export interface ReplayDeadLettersOptions {
  /** The ingest log's stream name (its dead letters are in `<stream>_DEAD`). */
  stream: string;
  /** Replay only dead letters with these error codes (header `Latch-Error-Code`). Default: all. */
  codes?: readonly string[];
}

/** What {@link replayDeadLetters} did. */
export interface ReplayDeadLettersResult {
  /** Dead letters published back to the ingest log and removed from the dead-letter stream. */
  replayed: number;
  /** Dead letters left where they were (their code is not in `codes`, or their body was truncated). */
  kept: number;
}

/**
 * Publishes the dead letters of an ingest log back to the log, once the cause is fixed (a bad
 * observation corrected upstream, a price or a ledger added, a bug fixed), and removes each from
 * the dead-letter stream once the log holds it again. Only the dead letters present when the
 * call starts are replayed: one that fails again is dead-lettered again by a worker, with a new
 * sequence, and waits for the next replay.
 *
 * A crash between the publish and the removal replays that dead letter twice; the store's
 * idempotent append (by eventId, with the same payload) stores it once.
 *
 * @example
 * const { replayed } = await replayDeadLetters(connection, { stream: "LATCH_INGEST" });
 */
export async function replayDeadLetters(
  connection: NatsConnection,
  options: ReplayDeadLettersOptions,
): Promise<ReplayDeadLettersResult> {
  const names = ingestNames(options.stream);
  const codes = options.codes === undefined ? undefined : new Set(options.codes);
  const jsm = await jetstreamManager(connection);
  const js = jetstream(connection);
  const { state } = await jsm.streams.info(names.deadLetterStream);
  const result: ReplayDeadLettersResult = { replayed: 0, kept: 0 };
  if (state.messages === 0) return result;
  const last = state.last_seq;
  // An ordered consumer: reads the stream in order without leaving a durable consumer behind.
  const reader = await js.consumers.get(names.deadLetterStream);
  try {
    let seen = state.first_seq - 1;
    while (seen < last) {
      const batch = await reader.fetch({ max_messages: 256, expires: 2_000 });
      let any = false;
      for await (const m of batch) {
        any = true;
        seen = m.seq;
        if (m.seq > last) break;
        const code = m.headers?.get(DEAD_LETTER_HEADERS.code) ?? "";
        // A body cut to fit (see DEAD_LETTER_HEADERS.truncated) is not the message: never replayed.
        if ((codes !== undefined && !codes.has(code)) || m.headers?.has(DEAD_LETTER_HEADERS.truncated)) {
          result.kept++;
          continue;
        }
        // A message id of its own: the original's may still be in the log's duplicate window.
        // With its time: a dead-letter stream created again numbers from 1 again, and a replay
        // of its new dead letter 1 would be dropped as a duplicate, then deleted.
        await js.publish(names.subject, m.data, {
          msgID: `${names.deadLetterStream}:${m.seq}:${m.timestampNanos}:replay`,
          expect: { streamName: names.stream },
        });
        await jsm.streams.deleteMessage(names.deadLetterStream, m.seq, false);
        result.replayed++;
      }
      if (!any) break; // nothing more arrived within the fetch's wait
    }
  } finally {
    await reader.delete().catch(() => undefined);
  }
  return result;
}
