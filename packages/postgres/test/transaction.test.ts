import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { PostgresBusyError, PostgresUsageCounter, type Queryable } from "../src/index.js";
import { resolveTimeouts, STORE_TIMEOUTS, transact, transactQuery } from "../src/transaction.js";

// How Latch opens its transactions, checked against scripted sessions (the server suites check
// the same paths against PostgreSQL and PGlite). A scripted session records every statement
// and answers from a script: a SQLSTATE to fail with, or rows.

type Answer = { rows?: unknown[]; fail?: string };

function sqlError(code: string): Error & { code: string } {
  return Object.assign(new Error(`SQLSTATE ${code}`), { code });
}

/** A single session (like a `pg.Client`); `inBlock` says whether the caller has a transaction open. */
function session(script: (text: string) => Answer | undefined, inBlock = false) {
  const log: string[] = [];
  let open = inBlock;
  const db: Queryable = {
    async query(text) {
      log.push(text);
      await new Promise((resolve) => setImmediate(resolve)); // other callers may run meanwhile
      if (text.startsWith("SAVEPOINT") && !open) throw sqlError("25P01");
      if (text.startsWith("BEGIN")) open = true;
      if (text === "COMMIT" || text === "ROLLBACK") open = false;
      const answer = script(text);
      if (answer?.fail !== undefined) throw sqlError(answer.fail);
      return { rows: answer?.rows ?? [], rowCount: answer?.rows?.length ?? 0 };
    },
  };
  return { db, log };
}

const settings = { lockTimeoutMs: 1_500, statementTimeoutMs: 4_000 };
const BEGIN =
  "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL jit = off; SET LOCAL lock_timeout = 1500; SET LOCAL statement_timeout = 4000";

describe("transactions Latch opens", () => {
  it("state READ COMMITTED, turn JIT off and set both timeouts before the work, then commit", async () => {
    const { db, log } = session(() => ({ rows: [{ n: 1 }] }));
    expect(await transact(db, settings, (tx) => tx.query("SELECT 1 AS n"))).toMatchObject({
      rows: [{ n: 1 }],
    });
    expect(log).toEqual([
      "SAVEPOINT latch_probe; RELEASE SAVEPOINT latch_probe",
      BEGIN,
      "SELECT 1 AS n",
      "COMMIT",
    ]);
  });

  it("join the caller's transaction on a session that is inside one: no BEGIN, no COMMIT, no retry", async () => {
    let attempts = 0;
    const { db, log } = session((text) => {
      if (text !== "UPDATE x") return {};
      attempts++;
      return { fail: "40001" };
    }, true);
    await expect(transact(db, settings, (tx) => tx.query("UPDATE x"))).rejects.toMatchObject({
      code: "store_busy",
      reason: "serialization_failure",
    });
    expect(attempts).toBe(1);
    expect(log).toEqual(["SAVEPOINT latch_probe; RELEASE SAVEPOINT latch_probe", "UPDATE x"]);
  });

  it("retry a transaction of theirs that the server aborted with a serialization failure or a deadlock, up to 3 attempts", async () => {
    let attempts = 0;
    // A serialization failure, then a deadlock, then success.
    const answers: Answer[] = [{ fail: "40001" }, { fail: "40P01" }, { rows: [1] }];
    const { db } = session((text) => (text === "UPDATE x" ? answers[attempts++] : {}));
    expect((await transact(db, settings, (tx) => tx.query("UPDATE x"))).rows).toEqual([1]);
    expect(attempts).toBe(3);

    attempts = 0;
    const always = session((text) => {
      if (text !== "UPDATE x") return {};
      attempts++;
      return { fail: "40001" };
    });
    const error = await transact(always.db, settings, (tx) => tx.query("UPDATE x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresBusyError);
    expect(error).toMatchObject({ reason: "serialization_failure", sqlState: "40001", isRetryable: true });
    expect(attempts).toBe(3);
    expect(always.log.filter((t) => t === "ROLLBACK")).toHaveLength(3);
  });

  it("never retry a lock or statement timeout (its time is spent): one attempt, then PostgresBusyError", async () => {
    for (const [state, reason] of [
      ["55P03", "lock_timeout"],
      ["57014", "statement_timeout"],
    ] as const) {
      let attempts = 0;
      const { db, log } = session((text) => {
        if (text !== "UPDATE x") return {};
        attempts++;
        return { fail: state };
      });
      await expect(transact(db, settings, (tx) => tx.query("UPDATE x"))).rejects.toMatchObject({
        code: "store_busy",
        reason,
        sqlState: state,
      });
      expect(attempts).toBe(1);
      expect(log.at(-1)).toBe("ROLLBACK");
    }
  });

  it("leave other errors as they are", async () => {
    const { db } = session((text) => (text === "UPDATE x" ? { fail: "23505" } : {}));
    await expect(transact(db, settings, (tx) => tx.query("UPDATE x"))).rejects.toMatchObject({
      code: "23505",
    });
  });

  it("run calls on one shared session one after another, never interleaved", async () => {
    const { db, log } = session(() => ({}));
    await Promise.all(
      ["a", "b", "c"].map((name) =>
        transact(db, settings, async (tx) => {
          await tx.query(`UPDATE ${name} 1`);
          await tx.query(`UPDATE ${name} 2`);
        }),
      ),
    );
    const work = log.filter((t) => t.startsWith("UPDATE") || t === "COMMIT" || t.startsWith("BEGIN"));
    expect(work).toEqual(["a", "b", "c"].flatMap((n) => [BEGIN, `UPDATE ${n} 1`, `UPDATE ${n} 2`, "COMMIT"]));
  });

  it("on a pool, send BEGIN, the statement and COMMIT one after another; a failed statement rolls back", async () => {
    const sent: string[] = [];
    const released: Array<Error | boolean | undefined> = [];
    let failNext = false;
    let inFlight = 0;
    let mostInFlight = 0;
    const client = {
      async query(text: string) {
        sent.push(text);
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        if (text === "UPDATE x" && failNext) throw sqlError("55P03");
        return { rows: text === "UPDATE x" ? [1] : [], rowCount: 0 };
      },
      release(error?: Error | boolean) {
        released.push(error);
      },
    };
    const pool = { query: client.query, connect: async () => client, totalCount: 1, idleCount: 0 };
    expect((await transactQuery(pool, settings, "UPDATE x", [])).rows).toEqual([1]);
    failNext = true;
    await expect(transactQuery(pool, settings, "UPDATE x", [])).rejects.toMatchObject({
      reason: "lock_timeout",
    });
    expect(sent).toEqual([BEGIN, "UPDATE x", "COMMIT", BEGIN, "UPDATE x", "ROLLBACK"]);
    // Never a query sent while another runs on the client (pg 8.23 deprecates it, pg 9 refuses).
    expect(mostInFlight).toBe(1);
    // A server's answer leaves the connection usable: both clients go back to the pool.
    expect(released).toEqual([undefined, undefined]);
  });

  it("on a pool, send ROLLBACK only once the failed statement's session is ready again", async () => {
    // pg rejects a failed query on the server's ErrorResponse and is ready for the next one only
    // at its ReadyForQuery, which may come in a later read (after a failed COPY, only once the
    // client ended the copy). A ROLLBACK sent in between is a query sent while another runs.
    const sent: string[] = [];
    const overlapping: string[] = [];
    const released: Array<Error | boolean | undefined> = [];
    const client = Object.assign(new EventEmitter(), {
      readyForQuery: true,
      query(text: string) {
        sent.push(text);
        if (!client.readyForQuery) overlapping.push(text);
        client.readyForQuery = false;
        return new Promise<{ rows: unknown[]; rowCount: number }>((resolve, reject) => {
          setImmediate(() => {
            if (text !== "UPDATE x") {
              client.readyForQuery = true;
              client.emit("drain");
              resolve({ rows: [], rowCount: 0 });
              return;
            }
            reject(sqlError("23505")); // ErrorResponse …
            setTimeout(() => {
              client.readyForQuery = true; // … ReadyForQuery, in a later read
              client.emit("drain");
            }, 5);
          });
        });
      },
      release(error?: Error | boolean) {
        released.push(error);
      },
    });
    const pool = { query: client.query, connect: async () => client, totalCount: 1, idleCount: 0 };
    await expect(transactQuery(pool, settings, "UPDATE x", [])).rejects.toMatchObject({ code: "23505" });
    expect(sent).toEqual([BEGIN, "UPDATE x", "ROLLBACK"]);
    expect(overlapping).toEqual([]);
    expect(released).toEqual([undefined]);
  });

  it("take the timeouts as whole milliseconds from 0 to 2^31-1, naming the option otherwise", () => {
    expect(resolveTimeouts({}, STORE_TIMEOUTS)).toEqual({
      lockTimeoutMs: 10_000,
      statementTimeoutMs: 60_000,
    });
    expect(resolveTimeouts({ lockTimeoutMs: 0, statementTimeoutMs: 250 }, STORE_TIMEOUTS)).toEqual({
      lockTimeoutMs: 0,
      statementTimeoutMs: 250,
    });
    const db = session(() => ({})).db;
    for (const bad of [-1, 1.5, 2 ** 31, Number.NaN]) {
      expect(() => new PostgresUsageCounter(db, { lockTimeoutMs: bad })).toThrow(/lockTimeoutMs/);
      expect(() => new PostgresUsageCounter(db, { statementTimeoutMs: bad })).toThrow(/statementTimeoutMs/);
    }
  });
});
