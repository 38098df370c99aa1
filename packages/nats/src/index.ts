/**
 * @latch/nats: an ingest log for fleets of gateways on NATS JetStream. Gateways publish
 * observations (`natsIngestLog`, given to `createLatch({ ingest })`); a consumer group of
 * workers (`runIngestWorker`, or the `latch-ingest` bin) rates and stores them. See the README.
 */
export { type NatsCredentialsOptions, natsConnectionOptions } from "./connection-options.js";
export {
  type ReplayDeadLettersOptions,
  type ReplayDeadLettersResult,
  replayDeadLetters,
} from "./dead-letters.js";
export { messageId, type NatsIngestLogOptions, natsIngestLog } from "./ingest-log.js";
export { type IngestNames, ingestNames } from "./names.js";
export type { IngestSetup } from "./setup.js";
export { deleteIngestStreams, type EnsureIngestStreamsOptions, ensureIngestStreams } from "./streams.js";
export {
  DEAD_LETTER_HEADERS,
  type IngestWorker,
  type IngestWorkerEvent,
  type IngestWorkerOptions,
  type IngestWorkerStats,
  ingestLag,
  runIngestWorker,
} from "./worker.js";
