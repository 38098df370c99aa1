import type { ChangeLogStatus } from "@latch/core/adapter";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { PostgresRatedRecordStore, type Queryable } from "../src/index.js";

/**
 * How long to wait for our own blocking transaction to become the oldest one on the server:
 * other test runs share it, and a transaction of theirs that began before ours is named first.
 */
const OLDEST_WITHIN_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` until `done` holds (or the deadline passes) and returns the last status. */
async function until(
  read: () => Promise<ChangeLogStatus>,
  done: (status: ChangeLogStatus) => boolean,
): Promise<ChangeLogStatus> {
  const deadline = Date.now() + OLDEST_WITHIN_MS;
  for (;;) {
    const status = await read();
    if (done(status) || Date.now() > deadline) return status;
    await sleep(50);
  }
}

/** A session of its own, outside the pool, that keeps a transaction open (named in pg_stat_activity). */
export async function openBlocker(
  url: string,
  applicationName: string,
): Promise<{ client: pg.Client; pid: number; xid: string }> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  await client.query("BEGIN");
  const { rows } = await client.query(
    "SELECT pg_backend_pid() AS pid, pg_current_xact_id()::xid::text AS xid", // takes an xid now
  );
  const row = rows[0] as { pid: number; xid: string };
  return { client, pid: row.pid, xid: row.xid };
}

/**
 * `changeLogStatus` on a server: a transaction open on another session holds the change log
 * back and is named (pid, xid, state, application, age); once it ends nothing of it is.
 * Kept short: while it is open, every change log on the server waits.
 */
export function describeChangeLogHoldOnServer(db: () => Queryable, schema: string, url: string): void {
  describe("postgres: changeLogStatus names the transaction that holds the change log back", () => {
    const tenantId = uniqueId("tenant");
    const record = (n: string) =>
      makeRatedRecord({
        observation: { eventId: `${uniqueId("held")}-${n}:0:openai`, subject: { tenantId } },
      });

    it("names an open transaction that wrote a version, counts what waits behind it, and forgets it after commit", async () => {
      const store = new PostgresRatedRecordStore(db(), { schema });
      const consumer = uniqueId("exporter");
      await store.put(record("before"));
      // Start from the end of the log as it is handed out now.
      await until(
        () => store.changeLogStatus({}),
        (s) => s.waiting === 0,
      );
      let cursor: string | undefined;
      for (;;) {
        const page = await store.listSince(cursor, 1_000);
        if (page.items.length === 0) break;
        cursor = page.cursor;
      }
      await store.saveCursor(consumer, cursor as string);

      const blocker = await openBlocker(url, "latch-status-test");
      try {
        // The blocker writes a version in its open transaction; another session commits one after it.
        await new PostgresRatedRecordStore(blocker.client, { schema }).put(record("open"));
        await store.put(record("after"));

        const held = await until(
          () => store.changeLogStatus({ consumer }),
          (s) => s.heldBack?.by === "transaction" && s.heldBack.pid === blocker.pid,
        );
        expect(held.heldBack, "another session's older transaction stayed open all along").toMatchObject({
          pid: blocker.pid,
        });
        expect(held).toMatchObject({
          consumer,
          cursor,
          ready: 0, // the version committed after the blocker began waits for it
          waiting: 1, // the blocker's own version is not committed: not counted
          capped: false,
          heldBack: {
            by: "transaction",
            pid: blocker.pid,
            xid: blocker.xid,
            state: "idle in transaction",
            applicationName: "latch-status-test",
          },
        });
        const holder = held.heldBack as {
          ageMs?: number;
          startedAt?: string;
          user?: string;
          database?: string;
        };
        expect(holder.ageMs).toBeGreaterThanOrEqual(0);
        expect(Date.parse(holder.startedAt as string)).toBeLessThanOrEqual(Date.now() + 60_000);
        expect(holder.user).toMatch(/.+/);
        expect(holder.database).toMatch(/.+/);
        // listSince agrees: nothing is handed out after the cursor while the blocker is open.
        expect((await store.listSince(cursor, 10)).items).toEqual([]);

        await blocker.client.query("COMMIT");
        const after = await until(
          () => store.changeLogStatus({ consumer }),
          (s) => s.waiting === 0,
        );
        expect(after).toMatchObject({ consumer, cursor, ready: 2, waiting: 0 });
        if (after.heldBack?.by === "transaction") expect(after.heldBack.pid).not.toBe(blocker.pid);
        expect((await store.listSince(cursor, 10)).items).toHaveLength(2);
      } finally {
        await blocker.client.query("ROLLBACK").catch(() => undefined);
        await blocker.client.end();
      }
    }, 120_000);

    it("names a transaction that only took an xid, and nothing of it after rollback", async () => {
      const store = new PostgresRatedRecordStore(db(), { schema });
      const blocker = await openBlocker(url, "latch-status-xid-only");
      try {
        const held = await until(
          () => store.changeLogStatus(),
          (s) => s.heldBack?.by === "transaction" && s.heldBack.pid === blocker.pid,
        );
        expect(held.heldBack, "another session's older transaction stayed open all along").toMatchObject({
          by: "transaction",
          pid: blocker.pid,
          xid: blocker.xid,
          state: "idle in transaction",
          applicationName: "latch-status-xid-only",
        });
        expect((held.heldBack as { ageMs: number }).ageMs).toBeGreaterThanOrEqual(0);
        await blocker.client.query("ROLLBACK");
        const after = await store.changeLogStatus();
        if (after.heldBack?.by === "transaction") expect(after.heldBack.pid).not.toBe(blocker.pid);
      } finally {
        await blocker.client.end();
      }
    }, 120_000);
  });
}

/** On PGlite (one session) nothing else can hold the log back. */
export function describeChangeLogHoldOnPglite(db: () => Queryable, schema: string): void {
  describe("pglite: changeLogStatus", () => {
    it("reports nothing held back: PGlite is one session", async () => {
      const store = new PostgresRatedRecordStore(db(), { schema });
      const consumer = uniqueId("exporter");
      await store.put(
        makeRatedRecord({
          observation: { eventId: `${uniqueId("pgl")}:0:openai`, subject: { tenantId: "t" } },
        }),
      );
      const status = await store.changeLogStatus({ consumer });
      expect(status.waiting).toBe(0);
      expect(status.heldBack).toBeUndefined();
      expect(status.ready).toBeGreaterThanOrEqual(1);
    });
  });
}
