import { asBusy, busyReason } from "./busy-error.js";
import { whenIdle } from "./client-ready.js";
import { isPool, type PoolLike, type Queryable, type QueryResultLike } from "./queryable.js";
import { sqlState } from "./schema.js";

/**
 * How long a Latch transaction may wait. Every store method runs in a transaction of its own
 * that states `READ COMMITTED` (what the stores' SQL is written for, whatever the server's
 * `default_transaction_isolation`) and sets both timeouts with `SET LOCAL`, so they end with it.
 */
export interface TransactionOptions {
  /**
   * Longest wait for one lock (a row another transaction holds, a table a migration holds), in
   * milliseconds; past it the call fails with `PostgresBusyError` (`reason: "lock_timeout"`),
   * and a quota reserve denies `unavailable`. `0` waits forever. Default 10,000; quota 2,000.
   */
  lockTimeoutMs?: number;
  /**
   * Longest run of one statement (lock waits included), in milliseconds; past it the call fails
   * with `PostgresBusyError` (`reason: "statement_timeout"`). `0`: no limit. Default 60,000;
   * quota 5,000. PGlite ignores it (it runs one statement at a time and never waits on a lock).
   */
  statementTimeoutMs?: number;
}

/** Resolved {@link TransactionOptions}. @internal */
export interface TransactionSettings {
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

/** Defaults of the stores (reports and large batches need room). @internal */
export const STORE_TIMEOUTS: TransactionSettings = { lockTimeoutMs: 10_000, statementTimeoutMs: 60_000 };
/** Defaults of quota, which sits on the request path and must fail closed quickly. @internal */
export const QUOTA_TIMEOUTS: TransactionSettings = { lockTimeoutMs: 2_000, statementTimeoutMs: 5_000 };

/** The largest value of an integer setting such as `lock_timeout`. */
const MAX_MS = 2_147_483_647;

function milliseconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_MS) {
    throw new TypeError(`${name} must be a whole number of milliseconds from 0 to ${MAX_MS}`);
  }
  return value;
}

/** Validates the options (a `TypeError` naming the option) and fills in the defaults. @internal */
export function resolveTimeouts(
  options: TransactionOptions,
  defaults: TransactionSettings,
): TransactionSettings {
  return {
    lockTimeoutMs: milliseconds("lockTimeoutMs", options.lockTimeoutMs, defaults.lockTimeoutMs),
    statementTimeoutMs: milliseconds(
      "statementTimeoutMs",
      options.statementTimeoutMs,
      defaults.statementTimeoutMs,
    ),
  };
}

/** Attempts of a transaction of ours that the server aborted with 40001 or 40P01. */
const ATTEMPTS = 3;
/** SAVEPOINT outside a transaction block. */
const NO_TRANSACTION_BLOCK = "25P01";
/** Succeeds only inside a transaction block (an implicit one, too, rejects SAVEPOINT). */
const PROBE = "SAVEPOINT latch_probe; RELEASE SAVEPOINT latch_probe";
const READ_COMMITTED = "ISOLATION LEVEL READ COMMITTED";

const timeouts = (s: TransactionSettings) =>
  `SET LOCAL lock_timeout = ${s.lockTimeoutMs}; SET LOCAL statement_timeout = ${s.statementTimeoutMs}`;

/**
 * Opens a transaction of ours on a session: one simple query (the values are validated
 * integers). JIT is off inside it: our statements are index probes, and on a table the planner
 * has no statistics for yet (a new month partition) it can price one of them high enough to
 * compile it, 20-30 ms of LLVM for a statement that runs in under 1 ms.
 * @internal
 */
export const beginScript = (s: TransactionSettings) =>
  `BEGIN ${READ_COMMITTED}; SET LOCAL jit = off; ${timeouts(s)}`;

/** Runs a multi-statement script: `pg` takes it as one simple query; PGlite needs `exec`. @internal */
export async function runScript(db: Queryable, sql: string): Promise<void> {
  if (db.exec !== undefined) await db.exec(sql);
  else await db.query(sql);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` in one transaction that states `READ COMMITTED` and sets the timeouts:
 *
 * - on PGlite (`fromPglite`), through its `transaction()`;
 * - on a pool, on a client checked out for the transaction (destroyed, not returned, if its
 *   connection failed);
 * - on a single session (a `Client`, a `PoolClient`, PGlite's transaction object), with
 *   BEGIN/COMMIT on it, after the calls queued on it before, so two Latch calls never
 *   interleave on one connection. A session already inside the caller's transaction is
 *   detected (a `SAVEPOINT` succeeds only there) and `fn` joins that transaction as it is: its
 *   isolation level and timeouts are the caller's, and nothing is retried.
 *
 * A transaction of ours that the server aborts with a serialization failure or a deadlock is
 * retried (3 attempts in all, after a short random pause); a lock or statement timeout is
 * not, since its time is spent. Those four surface as `PostgresBusyError`.
 * @internal
 */
export async function transact<T>(
  db: Queryable,
  settings: TransactionSettings,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  try {
    if (db.transaction !== undefined) {
      // PGlite's transaction() has issued BEGIN; SET TRANSACTION must be its first statement.
      return await retrying(
        () =>
          db.transaction?.(async (tx) => {
            await runScript(tx, `SET TRANSACTION ${READ_COMMITTED}; ${timeouts(settings)}`);
            return fn(tx);
          }) as Promise<T>,
      );
    }
    if (isPool(db)) return await retrying(() => onPooledClient(db, settings, fn));
    return await serialized(db, () => onSession(db, settings, fn));
  } catch (error) {
    throw asBusy(error);
  }
}

/**
 * One statement in one transaction of ours: {@link transact} with `tx.query(text, params)`.
 * BEGIN, the statement and COMMIT go one after another on one client. They are not queued on
 * the client at once: pg 8.23 deprecates a query sent while another runs (pg 9 removes it), and
 * the next step is sent from the previous one's reply handler (a microtask, not a trip through
 * the event loop), so a row lock is held no longer than it was when they were queued.
 * @internal
 */
export async function transactQuery(
  db: Queryable,
  settings: TransactionSettings,
  text: string,
  params: unknown[],
): Promise<QueryResultLike> {
  return transact(db, settings, (tx) => tx.query(text, params));
}

async function retrying<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const reason = busyReason(error);
      if (n >= ATTEMPTS || (reason !== "serialization_failure" && reason !== "deadlock")) throw error;
      await sleep(Math.random() * 10 * 2 ** n); // apart, so the two do not collide again
    }
  }
}

/** BEGIN … COMMIT on `session`; `onBroken` learns that the session is unusable (ROLLBACK failed). */
async function beginCommit<T>(
  session: Queryable,
  settings: TransactionSettings,
  fn: (tx: Queryable) => Promise<T>,
  onBroken: (error: Error) => void,
): Promise<T> {
  try {
    await runScript(session, beginScript(settings));
    const result = await fn(session);
    await session.query("COMMIT");
    return result;
  } catch (error) {
    // After a failed COMMIT there is no transaction left: ROLLBACK then only warns. It waits
    // for the failed query's end (pg rejects it before the server is ready for the next).
    await whenIdle(session);
    await session.query("ROLLBACK").catch((rollbackError: unknown) => {
      onBroken(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)));
    });
    throw error;
  }
}

type ClientEvents = Partial<{
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: "error", listener: (error: Error) => void): unknown;
}>;

async function onPooledClient<T>(
  pool: PoolLike,
  settings: TransactionSettings,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out pg client that loses its connection emits "error"; without a listener that
  // would crash the process. The failed query rejects on its own; just mark the client broken.
  const events = client as unknown as ClientEvents;
  const onError = (error: Error) => {
    broken ??= error;
  };
  events.on?.("error", onError);
  try {
    return await beginCommit(client, settings, fn, onError);
  } finally {
    events.removeListener?.("error", onError);
    // A client whose connection failed is destroyed rather than returned to the pool.
    client.release(broken);
  }
}

async function onSession<T>(
  session: Queryable,
  settings: TransactionSettings,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  try {
    await runScript(session, PROBE);
  } catch (error) {
    if (sqlState(error) !== NO_TRANSACTION_BLOCK) throw error;
    return retrying(() => beginCommit(session, settings, fn, () => undefined));
  }
  return fn(session); // inside the caller's transaction
}

/** The tail of the calls queued on each single session. */
const queues = new WeakMap<object, Promise<void>>();

/** Runs `fn` once every call queued on `session` before it has finished. */
function serialized<T>(session: object, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(session) ?? Promise.resolve();
  const run = previous.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(session, tail);
  void tail.then(() => {
    if (queues.get(session) === tail) queues.delete(session);
  });
  return run;
}
