import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { natsIngestLog, runIngestWorker } from "../src/index.js";
import { DATABASE_URL, DAY, observation, pricing, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, "support", "crash-worker.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

const ingest = useTestIngest();
const stream = ingest.stream("crash");
const schema = `latch_nats_${stream.toLowerCase()}`;
const durable = "crash-group";
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });

beforeAll(async () => {
  await migrate(pool, { schema });
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

async function count(sql: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${sql}`);
  return (rows[0] as { n: number }).n;
}

it("a worker killed mid-batch loses nothing: its messages are redelivered and stored exactly once", async () => {
  const total = 300;
  const log = natsIngestLog({ connection: ingest.nc, stream });
  for (let i = 0; i < total; i++) await log.publish(observation(`crash-${i}:0:openai`));

  // A worker process that commits 40 calls, then hangs on every store call, and is killed.
  const child = spawn(
    process.execPath,
    ["--conditions=dev-source", "--import", TSX, CHILD, stream, durable, schema, "40"],
    {
      env: { ...process.env, NODE_OPTIONS: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      if (s.includes("hung")) resolve();
    });
    child.on("close", () => reject(new Error(`the worker process exited early: ${stderr}`)));
    setTimeout(() => reject(new Error(`the worker process did not hang within 60 s: ${stderr}`)), 60_000);
  });
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");

  // It stored some calls of its batch and acknowledged fewer: some stored calls are still in the stream.
  const storedByChild = await count(`"${schema}".rated_records`);
  expect(storedByChild).toBeGreaterThanOrEqual(40);
  expect(storedByChild).toBeLessThan(total);

  const observations = new PostgresObservationStore(pool, { schema });
  const rated = new PostgresRatedRecordStore(pool, { schema });
  const survivor = await runIngestWorker({
    nats: ingest.nc,
    stream,
    durable,
    observations,
    rated,
    pricing: pricing(),
    onEvent: () => {},
  });
  try {
    await waitFor(
      "the surviving worker to store every call",
      async () => (await rated.summary(DAY))[0]?.requests === total,
      90_000,
    );
    await waitFor("the consumer to drain", () => ingest.drained(stream, durable));
  } finally {
    await survivor.stop();
  }
  // The dead worker's unacknowledged messages came back to the survivor (after the ack wait).
  expect(survivor.stats().redelivered).toBeGreaterThan(0);
  // Every call once: one observation and one rated-record version each.
  expect(await count(`"${schema}".observations`)).toBe(total);
  expect(await count(`"${schema}".rated_records`)).toBe(total);
  expect(await count(`(SELECT DISTINCT event_id FROM "${schema}".rated_records) AS e`)).toBe(total);
  expect(await count(`"${schema}".rated_records WHERE version <> 1`)).toBe(0);
  // 300 × 0.0045 USD, exactly.
  expect(await rated.summary(DAY)).toMatchObject([{ requests: total, costByCurrency: { USD: "1.35" } }]);
}, 180_000);
