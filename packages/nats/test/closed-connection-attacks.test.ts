/**
 * Adversarial cases of a worker whose connection ends under it: closed while messages are in
 * hand (their stores still running), drained while the worker waits in a fetch, and out of
 * reconnect attempts (a server of the test's own, stopped). What must hold: `done` rejects
 * naming the closed connection, no message is lost (the unacknowledged ones are redelivered
 * to the next worker) and none is stored twice.
 */
import type { UsageObservation } from "@latch/core";
import type { AppendResult } from "@latch/core/adapter";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { ensureIngestStreams, natsIngestLog, runIngestWorker } from "../src/index.js";
import {
  CountingObservationStore,
  connectNats,
  freshStream,
  memoryStores,
  observation,
  waitFor,
} from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";
import { startNatsServer } from "./support/nats-server.js";

/** Appends wait until `open()`: the messages stay in the worker's hand meanwhile. */
class GatedObservationStore extends CountingObservationStore {
  #open!: () => void;
  readonly #gate = new Promise<void>((resolve) => {
    this.#open = resolve;
  });
  started = 0;
  open(): void {
    this.#open();
  }
  override async append(obs: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    this.started++;
    await this.#gate;
    return super.append(obs, signal);
  }
}

const ingest = useTestIngest();

describe("a worker whose connection ends under it", () => {
  it("closed with messages in hand: done rejects, and the next worker stores each message once", async () => {
    const stream = await ingest.fresh("inhand");
    const ids = Array.from({ length: 3 }, (_, i) => `inhand-${i}:0:openai`);
    const log = natsIngestLog({ connection: ingest.nc, stream });
    for (const id of ids) await log.publish(observation(id));
    const stores = memoryStores(new GatedObservationStore());
    const { observations, rated } = stores;
    const connection = await connectNats();
    const events: string[] = [];
    const first = await runIngestWorker({
      ...stores,
      nats: connection,
      stream,
      ackWaitMs: 2_000,
      fetchExpiresMs: 1_000,
      onEvent: (e) => events.push(e.kind),
    });
    await waitFor("the worker to hold the messages", async () => observations.started === ids.length);
    await connection.close();
    observations.open(); // the stores commit after the connection is gone: their acks cannot be sent
    await expect(first.done).rejects.toThrow(/NATS connection is closed/);
    expect(ids.every((id) => observations.appended.get(id) === 1)).toBe(true);

    // The next worker (a new connection) gets them again after the ack wait: found stored, not stored twice.
    const again = await connectNats();
    const second = await runIngestWorker({
      ...stores,
      nats: again,
      stream,
      fetchExpiresMs: 1_000,
      onEvent: () => {},
    });
    try {
      await waitFor("the consumer to drain", () => ingest.drained(stream));
      expect(second.stats().redelivered).toBe(ids.length);
      for (const id of ids) {
        expect(observations.appended.get(id)).toBe(1);
        expect((await rated.current(id))?.version).toBe(1);
      }
    } finally {
      await second.stop();
      await again.close();
    }
  }, 90_000);

  it("drained while the worker waits in a fetch: the worker ends (done rejects) instead of fetching forever", async () => {
    const stream = await ingest.fresh("drain");
    const connection = await connectNats();
    const worker = await runIngestWorker({
      ...memoryStores(),
      nats: connection,
      stream,
      fetchExpiresMs: 1_000,
      onEvent: () => {},
    });
    await new Promise((r) => setTimeout(r, 300)); // inside its first fetch
    await connection.drain();
    await expect(worker.done).rejects.toThrow(/NATS connection is closed/);
  }, 60_000);

  it("out of reconnect attempts (a user connection, the server gone): done rejects; a worker on a new connection resumes", async () => {
    const server = await startNatsServer();
    try {
      const stream = freshStream("giveup");
      const setup = await connect({ servers: server.url });
      await ensureIngestStreams(setup, { stream });
      await setup.close();
      // The client's default would give up after 10 attempts 2 s apart: fewer, sooner, same path.
      const connection = await connect({
        servers: server.url,
        maxReconnectAttempts: 2,
        reconnectTimeWait: 200,
      });
      const stores = memoryStores();
      const worker = await runIngestWorker({
        ...stores,
        nats: connection,
        stream,
        fetchExpiresMs: 1_000,
        onEvent: () => {},
      });
      await server.kill();
      await expect(worker.done).rejects.toThrow(/NATS connection is closed/);
      expect(connection.isClosed()).toBe(true);
      await server.restart();
      const again = await connect({ servers: server.url });
      const log = natsIngestLog({ connection: again, stream });
      await log.publish(observation("giveup-1:0:openai"));
      const next = await runIngestWorker({
        ...stores,
        nats: again,
        stream,
        fetchExpiresMs: 1_000,
        onEvent: () => {},
      });
      await waitFor(
        "the new worker to store it",
        async () => stores.observations.appended.get("giveup-1:0:openai") === 1,
      );
      await next.stop();
      await again.close();
    } finally {
      await server.close();
    }
  }, 120_000);
});
