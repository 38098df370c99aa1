/**
 * Snapshot thinning on Postgres under attack: two pools write one ledger at once (each write
 * thins under the ledger's lock), with late usage dated before thinned-out snapshots, a void
 * and a reset; snapshots stored before `count` existed are never thinned. Every balance must
 * equal a replay from scratch (`MemoryCreditLedger` with snapshots off).
 */
import { MemoryCreditLedger } from "@latch/core";
import type { CreditLedger } from "@latch/core/adapter";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrate, PostgresCreditLedger } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("crthin");
const pools = [
  new pg.Pool({ connectionString: DATABASE_URL, max: 3 }),
  new pg.Pool({ connectionString: DATABASE_URL, max: 3 }),
];
const [a, b] = pools as [pg.Pool, pg.Pool];
beforeAll(() => migrate(a, { schema }));
afterAll(async () => {
  await a.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await Promise.all(pools.map((p) => p.end()));
});

const options = { schema, snapshotEvery: 1, snapshotThinning: { keepNewest: 2, sparseEvery: 3 } };
const at = (minute: number) => new Date(Date.parse("2026-01-02T00:00:00Z") + minute * 60_000).toISOString();

async function setUp(stores: CreditLedger[], ledgerId: string) {
  for (const c of stores) {
    await c
      .createFeature({ featureId: "f", measure: { kind: "money", currency: "USD" } })
      .catch(() => undefined);
    await c.createLedger({ ledgerId, subject: { tenantId: "t" } }).catch(() => undefined);
    await c.grant({
      grantId: `${ledgerId}:g1`,
      ledgerId,
      featureId: "f",
      amount: "500",
      effectiveAt: at(-10),
    });
    await c.grant({
      grantId: `${ledgerId}:g2`,
      ledgerId,
      featureId: "f",
      amount: "300",
      priority: 2,
      effectiveAt: at(-5),
    });
  }
}

async function expectAsFromScratch(store: CreditLedger, reference: CreditLedger, ledgerId: string) {
  for (const minute of [-1, 0, 5, 17, 30, 44, 61, 90, 200]) {
    expect(await store.balance(ledgerId, at(minute))).toEqual(await reference.balance(ledgerId, at(minute)));
  }
}

it("two pools burning, thinning, late usage, a void and a reset at once: as a replay from scratch", async () => {
  const ledgerId = `thin-${Date.now()}`;
  const one = new PostgresCreditLedger(a, options);
  const two = new PostgresCreditLedger(b, options);
  const reference = new MemoryCreditLedger({ snapshotEvery: 0 });
  await setUp([one, reference], ledgerId);
  const use = (c: CreditLedger, eventId: string, minute: number, amount = "1.25") =>
    c.recordUsage({ ledgerId, featureId: "f", eventId, amount, at: at(minute) });
  // In-order usage on one pool, late usage far back on the other, at the same time.
  const inOrder = (async () => {
    for (let i = 0; i < 60; i++) await use(one, `in-${i}`, i);
  })();
  const late = (async () => {
    for (let i = 0; i < 30; i++) await use(two, `late-${i}`, (i * 7) % 45, "2");
  })();
  await Promise.all([inOrder, late]);
  await Promise.all([
    two.voidGrant({ ledgerId, grantId: `${ledgerId}:g2`, at: at(33) }),
    one.recordUsage({ ledgerId, featureId: "f", eventId: "in-5", amount: "9", at: at(50), version: 2 }),
  ]);
  await Promise.all([two.reset({ ledgerId, at: at(44) }), use(one, "after-reset", 46, "3")]);
  for (let i = 0; i < 60; i++) await use(reference, `in-${i}`, i);
  for (let i = 0; i < 30; i++) await use(reference, `late-${i}`, (i * 7) % 45, "2");
  await reference.voidGrant({ ledgerId, grantId: `${ledgerId}:g2`, at: at(33) });
  await reference.recordUsage({
    ledgerId,
    featureId: "f",
    eventId: "in-5",
    amount: "9",
    at: at(50),
    version: 2,
  });
  await reference.reset({ ledgerId, at: at(44) });
  await use(reference, "after-reset", 46, "3");
  await expectAsFromScratch(one, reference, ledgerId);
  await expectAsFromScratch(two, reference, ledgerId);
  // Thinned: far fewer snapshots than usage events (one per event without thinning).
  const { rows } = await a.query(
    `SELECT count(*)::int AS n FROM "${schema}".credit_snapshots WHERE ledger_id = $1`,
    [ledgerId],
  );
  expect((rows[0] as { n: number }).n).toBeLessThan(45);
});

it("snapshots stored without a count are never thinned, and numbers stay as from scratch", async () => {
  const ledgerId = `old-${Date.now()}`;
  const store = new PostgresCreditLedger(a, options);
  const reference = new MemoryCreditLedger({ snapshotEvery: 0 });
  await setUp([store, reference], ledgerId);
  for (let i = 0; i < 20; i++) {
    for (const c of [store, reference]) {
      await c.recordUsage({ ledgerId, featureId: "f", eventId: `e${i}`, amount: "1", at: at(i) });
    }
  }
  // As stored before `count` was kept.
  await a.query(`UPDATE "${schema}".credit_snapshots SET state = state - 'count' WHERE ledger_id = $1`, [
    ledgerId,
  ]);
  const { rows: before } = await a.query(
    `SELECT position_ms::text AS p FROM "${schema}".credit_snapshots WHERE ledger_id = $1 ORDER BY 1`,
    [ledgerId],
  );
  expect(before.length).toBeGreaterThan(2);
  for (let i = 20; i < 50; i++) {
    for (const c of [store, reference]) {
      await c.recordUsage({ ledgerId, featureId: "f", eventId: `e${i}`, amount: "1", at: at(i) });
    }
  }
  const { rows: after } = await a.query(
    `SELECT position_ms::text AS p FROM "${schema}".credit_snapshots WHERE ledger_id = $1 ORDER BY 1`,
    [ledgerId],
  );
  const kept = new Set((after as Array<{ p: string }>).map((r) => r.p));
  for (const r of before as Array<{ p: string }>) expect(kept.has(r.p)).toBe(true);
  await expectAsFromScratch(store, reference, ledgerId);
});
