/**
 * A worker process the crash test kills: it stores messages through Postgres until `hangAfter`
 * rated records are committed, then every further store call hangs (committed, never
 * acknowledged) and it prints `hung` so the test can SIGKILL it mid-batch.
 *
 * args: <stream> <durable> <schema> <hangAfter>
 */
import type { RatedRecordStore } from "@latch/core/adapter";
import { PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { runIngestWorker } from "../../src/index.js";
import { connectNats, DATABASE_URL, pricing } from "./fixtures.js";

const [stream, durable, schema, hangAfterArg] = process.argv.slice(2) as [string, string, string, string];
const hangAfter = Number(hangAfterArg);
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
const real = new PostgresRatedRecordStore(pool, { schema });
let puts = 0;
const rated = new Proxy(real, {
  get(target, prop) {
    if (prop !== "put") {
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value; // methods read private fields
    }
    return async (...args: Parameters<RatedRecordStore["put"]>) => {
      const result = await target.put(...args);
      puts++;
      if (puts >= hangAfter) {
        if (puts === hangAfter) console.log("hung");
        return new Promise(() => {}); // stored, and never acknowledged
      }
      return result;
    };
  },
}) as RatedRecordStore;

const nats = await connectNats();
await runIngestWorker({
  nats,
  stream,
  durable,
  observations: new PostgresObservationStore(pool, { schema }),
  rated,
  pricing: pricing(),
  batchSize: 50,
  concurrency: 8,
  ackWaitMs: 3_000,
  onEvent: () => {},
});
console.log("started");
