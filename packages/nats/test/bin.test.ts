import { migrate } from "@latch/postgres";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DEAD_LETTER_HEADERS, ingestNames, natsIngestLog } from "../src/index.js";
import { DATABASE_URL, NATS_URL, observation, waitFor } from "./support/fixtures.js";
import { useTestIngest } from "./support/hooks.js";
import { runIngestBin, startIngestBin } from "./support/ingest-bin.js";

const ingest = useTestIngest();
const stream = ingest.stream("bin");
const schema = `latch_nats_${stream.toLowerCase()}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });

beforeAll(async () => {
  await migrate(pool, { schema });
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

it("latch-ingest stores what was published, and stops cleanly on SIGTERM", async () => {
  const log = natsIngestLog({ connection: ingest.nc, stream });
  for (let i = 0; i < 20; i++) await log.publish(observation(`bin-${i}:0:openai`));
  const { child, output, exited } = startIngestBin({
    stream,
    natsUrl: NATS_URL,
    env: { LATCH_TEST_SCHEMA: schema },
  });
  try {
    await waitFor("the bin to store 20 calls", async () => {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".rated_records`);
      return (rows[0] as { n: number }).n === 20;
    });
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`${(error as Error).message}; output: ${output()}`);
  }
  child.kill("SIGTERM");
  expect(await exited).toBe(0);
  expect(output()).toContain(`consuming ${stream}`);
  expect(output()).toMatch(/stopped .*"stored":20/);
}, 120_000);

it("latch-ingest replay-dead-letters publishes the chosen dead letters back and says how many", async () => {
  const names = ingestNames(stream);
  const js = jetstream(ingest.nc);
  const dead = (code: string, seq: number) => {
    const h = headers();
    h.set(DEAD_LETTER_HEADERS.code, code);
    return js.publish(names.deadLetterSubject, new TextEncoder().encode("{}"), {
      msgID: `bin-dead-${seq}`,
      headers: h,
    });
  };
  await dead("invalid_input", 1);
  await dead("not_json", 2);
  const run = (...args: string[]) => runIngestBin({ stream, natsUrl: NATS_URL, args });
  const replay = await run("replay-dead-letters", "--code", "invalid_input");
  expect(replay).toEqual({ code: 0, output: `latch-ingest: replayed 1 dead letters of ${stream}; 1 kept\n` });
  const wrong = await run("replay-everything");
  expect(wrong.code).toBe(2);
  expect(wrong.output).toContain("usage: latch-ingest");
}, 120_000);
