/**
 * Stream and subject names of one ingest log, derived from its stream name so that a gateway,
 * its workers and an operator agree without configuring each subject.
 */
export interface IngestNames {
  /** The stream observations are published to. */
  stream: string;
  /** The subject observations are published on (captured by `stream`). */
  subject: string;
  /** The stream holding messages no worker can store (dead letters). */
  deadLetterStream: string;
  /** The subject dead letters are published on (captured by `deadLetterStream`). */
  deadLetterSubject: string;
}

/** A JetStream stream name: letters, digits, `-` and `_` (no `.`, `*`, `>` or spaces), ≤ 64 chars. */
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The names of the ingest log called `stream`: subject `latch.ingest.<stream>`, dead letters in
 * stream `<stream>_DEAD` on subject `latch.ingest.<stream>.dead`. Throws a `TypeError` naming
 * the field when `stream` is not a valid stream name.
 *
 * @example
 * ingestNames("LATCH_INGEST").subject; // "latch.ingest.LATCH_INGEST"
 */
export function ingestNames(stream: string): IngestNames {
  if (typeof stream !== "string" || !STREAM_NAME.test(stream))
    throw new TypeError("Invalid ingest options: stream: expected 1–64 letters, digits, '-' or '_'");
  return {
    stream,
    subject: `latch.ingest.${stream}`,
    deadLetterStream: `${stream}_DEAD`,
    deadLetterSubject: `latch.ingest.${stream}.dead`,
  };
}
