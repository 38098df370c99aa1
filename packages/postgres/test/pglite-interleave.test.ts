/**
 * `fromPglite` yields a turn of the event loop between statements once they have run for 5 ms.
 * PGlite is one session: a statement of another caller that ran in such a turn inside a
 * transaction of ours would commit or roll back with it. PGlite's `transaction()` holds its
 * mutex for the whole callback, so other callers wait; these tests would show it if not.
 */
import { makeObservation, uniqueId } from "@latch/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PostgresCreditLedger, PostgresObservationStore, PostgresQuota } from "../src/index.js";
import { inMemoryPglite } from "./pglite-support.js";
import { count } from "./support.js";

const schema = "latch";
const lite = inMemoryPglite(schema);
beforeAll(lite.setup, 60_000);
afterAll(lite.teardown);

it("another caller's statements, issued while our transaction yields, stay out of it", async () => {
  const db = lite.db();
  await db.query("CREATE TABLE interleave (who text)");
  const order: string[] = [];
  const outside: Array<Promise<unknown>> = [];
  let turns = 0;
  await expect(
    db.transaction?.(async (tx) => {
      await tx.query("INSERT INTO interleave VALUES ('ours')");
      for (let i = 0; i < 5; i++) {
        // Each statement takes 10 ms, past the slice: the adapter yields after it.
        let yielded = false;
        setImmediate(() => {
          yielded = true;
          outside.push(db.query("INSERT INTO interleave VALUES ('theirs')").then(() => order.push("theirs")));
        });
        await tx.query("SELECT pg_sleep(0.01)");
        if (yielded) turns++;
      }
      order.push("ours done");
      throw new Error("roll back");
    }),
  ).rejects.toThrow("roll back");
  await Promise.all(outside);
  expect(turns).toBeGreaterThan(0); // the adapter did yield inside the transaction
  expect(order[0]).toBe("ours done");
  expect(await count(db, "SELECT 1 FROM interleave WHERE who = 'ours'", [])).toBe(0);
  expect(await count(db, "SELECT 1 FROM interleave WHERE who = 'theirs'", [])).toBe(5);
});

it("concurrent credit burns, quota reserves and observation appends on one PGlite stay exact", async () => {
  const db = lite.db();
  const credits = new PostgresCreditLedger(db, { schema, snapshotEvery: 2 });
  const quota = new PostgresQuota(db, { schema });
  const observations = new PostgresObservationStore(db, { schema });
  const ledgerId = uniqueId("l");
  const account = uniqueId("acct");
  await credits.createFeature({ featureId: "f", measure: { kind: "money", currency: "USD" } });
  await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
  await credits.grant({
    grantId: `${ledgerId}:g`,
    ledgerId,
    featureId: "f",
    amount: "25",
    effectiveAt: "2026-01-01T00:00:00Z",
  });
  await quota.setLimit(account, 30);
  const burns = Array.from({ length: 40 }, (_, i) =>
    credits.recordUsage({
      ledgerId,
      featureId: "f",
      eventId: `e${i}`,
      amount: "1",
      at: new Date(Date.parse("2026-01-02T00:00:00Z") + i * 1000).toISOString(),
      enforce: true,
    }),
  );
  const reserves = Array.from({ length: 40 }, (_, i) =>
    quota.reserve({ holdId: `${account}:h${i}`, account, amount: 1, ttlMs: 60_000 }),
  );
  const appends = Array.from({ length: 20 }, () => observations.append(makeObservation({})));
  const slow = Array.from({ length: 10 }, () => db.query("SELECT pg_sleep(0.01)"));
  const [burned, reserved, appended] = await Promise.all([
    Promise.all(burns),
    Promise.all(reserves),
    Promise.all(appends),
    Promise.all(slow),
  ]);
  expect(burned.filter((r) => r.status === "recorded")).toHaveLength(25);
  expect(burned.filter((r) => r.status === "denied")).toHaveLength(15);
  expect(reserved.filter((r) => r.granted)).toHaveLength(30);
  expect(appended.every((a) => a === "appended")).toBe(true);
  const balance = await credits.balance(ledgerId, "2026-02-01T00:00:00Z");
  expect(balance.features[0]?.balance).toBe("0");
  expect(await quota.balance(account)).toEqual({ limit: 30, spent: 0, held: 30, available: 0 });
  const granted = reserved.flatMap((r, i) => (r.granted ? [`${account}:h${i}`] : []));
  const commits = await Promise.all(granted.map((holdId) => quota.commit(holdId, 1)));
  expect(commits.filter((c) => c.committed === 1)).toHaveLength(30);
  expect(await quota.balance(account)).toEqual({ limit: 30, spent: 30, held: 0, available: 0 });
});
