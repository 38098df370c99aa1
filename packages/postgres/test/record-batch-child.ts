/**
 * A process that records events through the record writer until it is killed (SIGKILL, by
 * record-batch-adversarial.test.ts): it reports on IPC once its first batch committed.
 */
import { DefaultRatingEngine } from "@latch/core";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import pg from "pg";
import { PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";

const { DATABASE_URL = "", CHILD_SCHEMA = "", CHILD_PREFIX = "", CHILD_EVENTS = "0" } = process.env;
const engine = new DefaultRatingEngine();
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const observations = new PostgresObservationStore(pool, {
  schema: CHILD_SCHEMA,
  groupCommit: { maxWaitMs: 2, maxBatch: 32 },
});
const writer = observations.recordWriter(new PostgresRatedRecordStore(pool, { schema: CHILD_SCHEMA }));
if (writer === undefined) throw new Error("expected a record writer");
let reported = false;
const n = Number(CHILD_EVENTS);
for (let round = 0; ; round++) {
  await Promise.all(
    Array.from({ length: 32 }, (_, k) => {
      const obs = makeObservation({ eventId: `${CHILD_PREFIX}-${(round * 32 + k) % n}` });
      const record =
        k % 5 === 0
          ? undefined
          : engine.rate(obs, makeSnapshot(obs.model.billableModel, "USD"), {
              ratedAt: "2026-03-01T12:00:05Z",
            });
      return writer.write(obs, record).then(() => {
        if (!reported) process.send?.("committed");
        reported = true;
      });
    }),
  );
}
