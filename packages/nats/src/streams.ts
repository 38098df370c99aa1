import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { ingestNames } from "./names.js";

export interface EnsureIngestStreamsOptions {
  /** The ingest log's stream name (see `ingestNames`). */
  stream: string;
  /**
   * How long JetStream remembers a message id to drop a second publish of the same eventId.
   * Default 10 minutes: longer than a gateway's retries and a typical spool outage; a later
   * duplicate is still stored once (the observation store is idempotent by eventId).
   */
  duplicateWindowMs?: number;
  /**
   * How long an observation no worker has acknowledged stays in the stream (an acknowledged one
   * leaves at once: work-queue retention). Default 7 days: size it above your longest store outage.
   */
  maxAgeMs?: number;
  /** Replicas of both streams (a clustered JetStream). Default 1. */
  replicas?: number;
}

/**
 * Creates the ingest log's two streams if they do not exist: the observation stream (file
 * storage, work-queue retention: a message leaves once a worker acknowledges it) and its
 * dead-letter stream (limits retention, kept for an operator to inspect). Existing streams are
 * left as they are. Run it at deployment (the `latch-ingest` bin does) or from a test.
 *
 * @example
 * await ensureIngestStreams(connection, { stream: "LATCH_INGEST" });
 */
export async function ensureIngestStreams(
  connection: NatsConnection,
  options: EnsureIngestStreamsOptions,
): Promise<void> {
  const names = ingestNames(options.stream);
  const jsm = await jetstreamManager(connection);
  const replicas = options.replicas ?? 1;
  await addIfMissing(jsm, {
    name: names.stream,
    subjects: [names.subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    duplicate_window: nanos(options.duplicateWindowMs ?? 600_000),
    max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3_600_000),
    num_replicas: replicas,
  });
  await addIfMissing(jsm, {
    name: names.deadLetterStream,
    subjects: [names.deadLetterSubject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(options.duplicateWindowMs ?? 600_000),
    num_replicas: replicas,
  });
}

/**
 * Deletes the ingest log's streams (tests, teardown). Messages still in them are lost: drain
 * the workers first.
 */
export async function deleteIngestStreams(connection: NatsConnection, stream: string): Promise<void> {
  const names = ingestNames(stream);
  const jsm = await jetstreamManager(connection);
  for (const name of [names.stream, names.deadLetterStream]) {
    try {
      await jsm.streams.delete(name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

type Jsm = Awaited<ReturnType<typeof jetstreamManager>>;

async function addIfMissing(jsm: Jsm, config: Parameters<Jsm["streams"]["add"]>[0]): Promise<void> {
  try {
    await jsm.streams.info(config.name as string);
    return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  await jsm.streams.add(config);
}

/** JetStream's "consumer not found" (err_code 10014), not a missing stream (10059). @internal */
export function isConsumerNotFound(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number }; message?: unknown };
  if (e?.api_error?.err_code === 10014) return true;
  return typeof e?.message === "string" && /consumer not found/i.test(e.message);
}

/** A JetStream "not found" answer (stream or consumer). */
export function isNotFound(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number; code?: number }; code?: unknown; message?: unknown };
  if (e?.api_error?.code === 404) return true;
  return typeof e?.message === "string" && /not found/i.test(e.message);
}
