/**
 * The NATS server itself dies and comes back (a nats-server of this test's own, file storage:
 * the shared server is left alone). A `latch-ingest` worker must outlive an outage longer than
 * the NATS client's default reconnect budget (10 attempts, 2 s apart): with the defaults its
 * connection closed for good after ~20 s and the worker kept failing its fetches forever,
 * storing nothing, without exiting.
 */
import { migrate } from "@latch/postgres";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureIngestStreams, ingestLag, natsIngestLog } from "../src/index.js";
import { DATABASE_URL, freshStream, observation, waitFor } from "./support/fixtures.js";
import { startIngestBin } from "./support/ingest-bin.js";
import { startNatsServer, type TestNatsServer } from "./support/nats-server.js";

const stream = freshStream("restart");
const schema = `latch_nats_${stream.toLowerCase()}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
let server: TestNatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer(); // fails (never skips) when nats-server cannot start
  // The test's own connection waits for the server however long it is away.
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  await ensureIngestStreams(nc, { stream });
  await migrate(pool, { schema });
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await server?.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

async function stored(): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".rated_records`);
  return (rows[0] as { n: number }).n;
}

it("latch-ingest outlives a NATS server down longer than the client's default reconnect budget, and stores what comes after", async () => {
  const log = natsIngestLog({ connection: nc, stream });
  for (let i = 0; i < 20; i++) await log.publish(observation(`restart-${i}:0:openai`));
  const { child, output, exited } = startIngestBin({
    stream,
    natsUrl: server.url,
    env: { LATCH_TEST_SCHEMA: schema },
  });
  try {
    await waitFor("the worker to store the first 20 calls", async () => (await stored()) === 20, 60_000);

    // Killed (no shutdown, no flush), away for 30 s, started again on the same port and store.
    await server.kill();
    await new Promise((r) => setTimeout(r, 30_000));
    await server.restart();
    // The stream survived; what is published now reaches the same worker.
    await waitFor("the test's connection to come back", () =>
      nc.rtt().then(
        () => true,
        () => false,
      ),
    );
    for (let i = 20; i < 40; i++) {
      for (let attempt = 1; ; attempt++) {
        try {
          await log.publish(observation(`restart-${i}:0:openai`));
          break;
        } catch (error) {
          if (attempt >= 100) throw error; // JetStream may still be recovering the stream
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
    await waitFor(
      "the worker to store the 20 calls published after the restart",
      async () => (await stored()) === 40,
      60_000,
    );
    // ...and acknowledged them (the acks follow the commits).
    await waitFor(
      "the consumer's lag to reach 0",
      async () => {
        const lag = await ingestLag(nc, stream);
        return lag.pending === 0 && lag.ackPending === 0;
      },
      60_000,
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`${(error as Error).message}; worker output: ${output().slice(-4_000)}`);
  }
  child.kill("SIGTERM");
  expect(await exited).toBe(0);
  // Each call stored once; the worker may have stored some twice (acks the dead server lost).
  expect(await stored()).toBe(40);
  expect(Number(/stopped .*"stored":(\d+)/.exec(output())?.[1])).toBeGreaterThanOrEqual(40);
}, 180_000);
