import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import {
  deleteIngestStreams,
  ensureIngestStreams,
  type IngestWorker,
  ingestLag,
  runIngestWorker,
} from "../../src/index.js";
import { connectNats, freshStream } from "./fixtures.js";

// Vitest hooks the test files share: call these at the top of a file or a describe block.

/** A directory of its own (under the system's temporary one) for the tests, removed after them. */
export function useTempDir(prefix: string): { readonly path: string } {
  let path: string | undefined;
  beforeAll(async () => {
    path = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    if (path) await rm(path, { recursive: true, force: true });
  });
  return {
    get path() {
      if (!path) throw new Error("useTempDir: no directory before its beforeAll hook");
      return path;
    },
  };
}

/** A test file's (or describe block's) connection, and the ingest streams and workers it made. */
export interface TestIngest {
  /** The connection (from the first beforeAll hook on). */
  readonly nc: NatsConnection;
  /** A stream of its own, named after `label`, its ingest streams created before the tests. */
  stream(label: string): string;
  /** A stream of its own, its ingest streams created now (inside a test or hook). */
  fresh(label: string): Promise<string>;
  /** A stream name of its own, deleted after the tests; the test creates it itself (or never). */
  track(label: string): string;
  /** runIngestWorker (quiet unless `onEvent` is given); stopped after the tests, before the streams go. */
  startWorker(options: Parameters<typeof runIngestWorker>[0]): Promise<IngestWorker>;
  /** Whether `stream`'s consumer has nothing pending and nothing unacknowledged. */
  drained(stream: string, durable?: string): Promise<boolean>;
}

/**
 * Registers the vitest hooks of a NATS test: before the tests, connect (the shared server unless
 * `connect` is given) and create the streams of `stream()`; after them, stop the workers of
 * `startWorker()`, delete every stream named here and drain the connection. Call it before the
 * hooks that use its connection: vitest runs afterAll hooks in reverse order, so theirs run first.
 */
export function useTestIngest(options: { connect?: () => Promise<NatsConnection> } = {}): TestIngest {
  let connection: NatsConnection | undefined;
  let started = false;
  const before: string[] = [];
  const streams: string[] = [];
  const workers: IngestWorker[] = [];

  beforeAll(async () => {
    started = true;
    connection = await (options.connect ?? connectNats)();
    for (const stream of before) await ensureIngestStreams(connection, { stream });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    if (!connection) return;
    for (const stream of streams) await deleteIngestStreams(connection, stream);
    await connection.drain();
  });

  const ingest: TestIngest = {
    get nc() {
      if (!connection) throw new Error("useTestIngest: no connection before its beforeAll hook");
      return connection;
    },
    stream(label) {
      if (started) throw new Error("useTestIngest: stream() is for before the tests; use fresh()");
      const stream = ingest.track(label);
      before.push(stream);
      return stream;
    },
    async fresh(label) {
      const stream = ingest.track(label);
      await ensureIngestStreams(ingest.nc, { stream });
      return stream;
    },
    track(label) {
      const stream = freshStream(label);
      streams.push(stream);
      return stream;
    },
    async startWorker(workerOptions) {
      const worker = await runIngestWorker({ onEvent: () => {}, ...workerOptions });
      workers.push(worker);
      return worker;
    },
    async drained(stream, durable) {
      const lag = await ingestLag(ingest.nc, stream, durable);
      return lag.pending === 0 && lag.ackPending === 0;
    },
  };
  return ingest;
}
