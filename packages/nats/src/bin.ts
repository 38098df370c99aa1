#!/usr/bin/env node
/**
 * `latch-ingest`: one ingest worker of a consumer group (see `runIngestWorker`).
 *
 *   latch-ingest --config ./ingest.config.js [--nats nats://127.0.0.1:4222] [--creds <file>]
 *                [--stream LATCH_INGEST] [--durable latch-ingest] [--batch 256] [--concurrency 64]
 *
 * `--config` names an ES module whose default export is an {@link IngestSetup} (or a function,
 * possibly async, returning one): the stores and pricing the worker writes with. `--nats`,
 * `--creds` and `--stream` default to `NATS_URL`, `NATS_CREDS` and `LATCH_INGEST_STREAM`; the URL
 * may carry credentials (`nats://user:password@host:4222`, `nats://token@host:4222`) and `--creds`
 * names a `.creds` file (see `natsConnectionOptions`). SIGTERM/SIGINT finish the batch in hand,
 * then exit 0.
 *
 *   latch-ingest replay-dead-letters [--nats <url>] [--creds <file>] [--stream <name>] [--code <code> …]
 *
 * publishes the stream's dead letters (those with one of the `--code`s, or all) back to the
 * ingest log once their cause is fixed, and prints how many; see `replayDeadLetters`.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { natsConnectionOptions } from "./connection-options.js";
import { replayDeadLetters } from "./dead-letters.js";
import type { IngestSetup } from "./setup.js";
import { ensureIngestStreams } from "./streams.js";
import { runIngestWorker } from "./worker.js";

const USAGE = `usage: latch-ingest --config <module> [--nats <url>] [--creds <file>] [--stream <name>] [--durable <name>] [--batch <n>] [--concurrency <n>]
       latch-ingest replay-dead-letters [--nats <url>] [--creds <file>] [--stream <name>] [--code <code> ...]`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      code: { type: "string", multiple: true },
      config: { type: "string" },
      creds: { type: "string" },
      nats: { type: "string" },
      stream: { type: "string" },
      durable: { type: "string" },
      batch: { type: "string" },
      concurrency: { type: "string" },
      help: { type: "boolean" },
    },
  });
  const stream = values.stream ?? process.env.LATCH_INGEST_STREAM ?? "LATCH_INGEST";
  const natsUrl = values.nats ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  const natsOptions = () =>
    natsConnectionOptions(natsUrl, {
      ...((values.creds ?? process.env.NATS_CREDS) ? { creds: values.creds ?? process.env.NATS_CREDS } : {}),
    });
  if (positionals.length > 0) {
    if (positionals.length !== 1 || positionals[0] !== "replay-dead-letters") {
      console.error(USAGE);
      return 2;
    }
    const nats = await connect(await natsOptions());
    try {
      const result = await replayDeadLetters(nats, {
        stream,
        ...(values.code ? { codes: values.code } : {}),
      });
      console.log(`latch-ingest: replayed ${result.replayed} dead letters of ${stream}; ${result.kept} kept`);
    } finally {
      await nats.drain();
    }
    return 0;
  }
  if (values.help || values.config === undefined) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const loaded = (await import(pathToFileURL(resolve(values.config)).href)) as { default?: unknown };
  const exported = loaded.default;
  const setup = (typeof exported === "function" ? await exported() : exported) as IngestSetup | undefined;
  if (typeof setup !== "object" || setup === null) {
    console.error(
      "latch-ingest: --config: expected a module whose default export is the worker's stores and pricing",
    );
    return 2;
  }
  // Also when the connection or the stream cannot be set up (a credentials file that is not
  // there, a refused password): the stores are closed, else a pool would hold the process open
  // with the error printed and the supervisor never told.
  let nats: Awaited<ReturnType<typeof connect>> | undefined;
  let failed = false;
  let closeFailure: { error: unknown } | undefined;
  try {
    // A worker lives as long as its process: it waits for the server however long it is away
    // (the client's default gives up after 10 attempts, ~20 s, and the worker would then fail
    // every fetch forever without exiting).
    nats = await connect({ ...(await natsOptions()), maxReconnectAttempts: -1 });
    await ensureIngestStreams(nats, { stream });
    const worker = await runIngestWorker({
      ...setup,
      nats,
      stream,
      ...(values.durable ? { durable: values.durable } : {}),
      ...(values.batch ? { batchSize: Number(values.batch) } : {}),
      ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
    });
    console.log(`latch-ingest: consuming ${stream}`);
    const stop = () => void worker.stop();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    const stats = await worker.done;
    console.log(`latch-ingest: stopped ${JSON.stringify(stats)}`);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // Also when `done` rejects (the connection closed for good): the stores are closed, so the
    // process exits (1) for its supervisor to restart, instead of being held open by a pool.
    // With the server away the drain fails: close instead (a connection left reconnecting would
    // keep the process alive).
    const connection = nats;
    await connection?.drain().catch(() => connection.close());
    try {
      await setup.close?.();
    } catch (error) {
      // The worker's own failure (what the supervisor's log must show) is not replaced by it.
      if (failed)
        console.error(
          `latch-ingest: closing the setup failed too: ${error instanceof Error ? error.message : String(error)}`,
        );
      else closeFailure = { error };
    }
  }
  if (closeFailure !== undefined) throw closeFailure.error;
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`latch-ingest: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
