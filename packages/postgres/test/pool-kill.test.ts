/**
 * One-statement transactions on a real pg.Pool (BEGIN, the statement and COMMIT sent one after
 * another) when the server ends the session at each step, or answers the statement with an
 * error: a dead client is destroyed, never returned to the pool, no session is left idle in a
 * transaction, and nothing is written twice or half.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PoolLike, Queryable } from "../src/queryable.js";
import { QUOTA_TIMEOUTS, transactQuery } from "../src/transaction.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("poolkill");
const app = `latch-${schema}`;
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const table = `"${schema}".t`;

beforeAll(async () => {
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`CREATE TABLE ${table} (id text PRIMARY KEY)`);
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

interface Released {
  error: Error | undefined;
  status: string | null;
}

/** A pool of one connection; every release is recorded with the session's transaction status. */
function victimPool() {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1, application_name: app });
  pool.on("error", () => undefined);
  const released: Released[] = [];
  pool.on("release", (error: Error | undefined, client: pg.PoolClient) => {
    released.push({ error, status: (client as unknown as pg.Client).getTransactionStatus() });
  });
  return { pool, released };
}

/**
 * `pool` whose checked-out clients have their backend terminated (by another session) just
 * before `before` is sent, once the client has seen it die: a connection lost between steps.
 */
function killingBefore(pool: pg.Pool, before: string): PoolLike {
  const connect = async () => {
    const client = await pool.connect();
    const query = async (text: string, params?: unknown[]) => {
      if (text === before) {
        const died = new Promise((resolve) => client.once("error", resolve));
        const pid = (client as unknown as { processID: number }).processID;
        await admin.query("SELECT pg_terminate_backend($1)", [pid]);
        await died;
      }
      return client.query(text, params);
    };
    return new Proxy(client, {
      get: (target, key) => {
        if (key === "query") return query;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as unknown as Queryable & { release(error?: Error | boolean): void };
  };
  return {
    connect,
    query: (text: string, params?: unknown[]) => pool.query(text, params),
    get totalCount() {
      return pool.totalCount;
    },
    get idleCount() {
      return pool.idleCount;
    },
  };
}

async function idleInTransaction(): Promise<number> {
  const { rows } = await admin.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
    [app],
  );
  return (rows[0] as { n: number }).n;
}

const stored = async (id: string) =>
  (await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = $1`, [id])).rows[0].n as number;

describe("a one-statement transaction on a pg.Pool", () => {
  for (const step of ["the statement", "COMMIT"] as const) {
    it(`whose connection dies before ${step} is sent: destroyed, nothing written, the pool goes on`, async () => {
      const { pool, released } = victimPool();
      try {
        const id = `before-${step}`;
        const insert = `INSERT INTO ${table} (id) VALUES ($1)`;
        const db = killingBefore(pool, step === "COMMIT" ? "COMMIT" : insert);
        await expect(transactQuery(db, QUOTA_TIMEOUTS, insert, [id])).rejects.toThrow();
        expect(released).toHaveLength(1);
        expect(released[0]?.error).toBeInstanceOf(Error); // destroyed, not returned
        expect(pool.totalCount).toBe(0);
        expect(await stored(id)).toBe(0);
        // The pool opens a new session; the same call then writes once.
        await transactQuery(pool, QUOTA_TIMEOUTS, insert, [id]);
        expect(await stored(id)).toBe(1);
        expect(await idleInTransaction()).toBe(0);
      } finally {
        await pool.end();
      }
    });
  }

  it("whose statement kills its own backend: the client is destroyed, the next call works", async () => {
    const { pool, released } = victimPool();
    try {
      await expect(
        transactQuery(pool, QUOTA_TIMEOUTS, "SELECT pg_terminate_backend(pg_backend_pid())", []),
      ).rejects.toMatchObject({ code: "57P01" });
      expect(released[0]?.error).toBeInstanceOf(Error);
      expect(pool.totalCount).toBe(0);
      const { rows } = await transactQuery(pool, QUOTA_TIMEOUTS, "SELECT 1 AS one", []);
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it("whose statement fails with a SQLSTATE: rolled back, the same client goes back idle and is reused", async () => {
    const { pool, released } = victimPool();
    try {
      const pid = async () =>
        (await transactQuery(pool, QUOTA_TIMEOUTS, "SELECT pg_backend_pid() AS pid", [])).rows[0];
      const first = await pid();
      await expect(
        transactQuery(pool, QUOTA_TIMEOUTS, `INSERT INTO ${table} (id) VALUES ($1), ($1)`, ["dup"]),
      ).rejects.toMatchObject({ code: "23505" });
      expect(await stored("dup")).toBe(0);
      expect(await pid()).toEqual(first); // the very session, reused
      expect(released.map((r) => [r.error, r.status])).toEqual([
        [undefined, "I"],
        [undefined, "I"],
        [undefined, "I"],
      ]);
      expect(await idleInTransaction()).toBe(0);
    } finally {
      await pool.end();
    }
  });
});
