/** The result shape every driver returns: rows and the number of rows a command touched. */
export interface QueryResultLike {
  rows: unknown[];
  rowCount?: number | null;
}

/**
 * Anything that runs one parameterised SQL statement. A `pg.Pool`, a `pg.Client`, a
 * `PoolClient` checked out inside your own transaction, and {@link fromPglite}'s adapter all
 * fit structurally. Every Latch call runs in a transaction of its own (`READ COMMITTED`, with
 * lock and statement timeouts), except on a session that is already inside your transaction,
 * which it joins.
 *
 * Optional members: `exec` runs a multi-statement script and `transaction` runs a function in
 * one transaction (PGlite, a single session, must use it instead of raw BEGIN/COMMIT).
 */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<QueryResultLike>;
  /** Runs a multi-statement script (PGlite's `query` takes one statement; `pg` needs no `exec`). */
  exec?(sql: string): Promise<unknown>;
  transaction?<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/** A connection pool (`pg.Pool`): `migrate` checks out one dedicated session for its transaction. */
export interface PoolLike extends Queryable {
  connect(): Promise<Queryable & { release(error?: Error | boolean): void }>;
  readonly totalCount: number;
  readonly idleCount: number;
}

/** A `pg.Pool` (a `pg.Client` also has `connect()`, but connects itself instead of checking out). @internal */
export function isPool(db: Queryable): db is PoolLike {
  return typeof (db as Partial<PoolLike>).connect === "function" && "totalCount" in db && "idleCount" in db;
}

/** The parts of a PGlite instance (or its transaction object) that the adapter uses. */
export interface PgliteSessionLike {
  query<T>(
    text: string,
    params?: unknown[],
    options?: { parsers?: Record<number, (value: string, typeId: number) => unknown> },
  ): Promise<{ rows: T[]; affectedRows?: number }>;
  exec(sql: string): Promise<unknown>;
}

/** A PGlite instance: `new PGlite()` from `@electric-sql/pglite`. */
export interface PGliteLike extends PgliteSessionLike {
  transaction<T>(fn: (tx: PgliteSessionLike) => Promise<T>): Promise<T>;
}

const INT8 = 20;
/** int8 as a decimal string, as `pg` returns it (PGlite would return a number or a BigInt). */
const PARSERS = { [INT8]: (value: string) => value };

/** Time PGlite statements may run back to back before the adapter yields a turn of the loop. */
const PGLITE_SLICE_MS = 5;
let sliceStart = performance.now();

/** One turn of the event loop (timers and I/O callbacks run) once the current slice is used up. */
async function yieldToLoop(): Promise<void> {
  if (performance.now() - sliceStart < PGLITE_SLICE_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  sliceStart = performance.now();
}

function session(db: PgliteSessionLike): Queryable {
  return {
    async query(text, params) {
      const result = await db.query<unknown>(text, params ?? [], { parsers: PARSERS });
      // PGlite runs each statement in this thread and resolves without a turn of the event
      // loop, so an operation of ten statements would hold the loop for all ten: yield once
      // statements have run back to back for 5 ms, so the longest stretch is about one
      // statement (plus the JS between two) over that.
      await yieldToLoop();
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    exec: (sql) => db.exec(sql),
  };
}

/**
 * Adapts a PGlite instance to {@link Queryable}. int8 values come back as decimal strings
 * (like `pg`), and `transaction()` uses PGlite's own `db.transaction()`: PGlite is a single
 * session, so a raw `BEGIN` would pull every other caller's queries into that transaction.
 * After a statement, once statements have run back to back for 5 ms, the adapter yields one
 * turn of the event loop (`setImmediate`): PGlite runs statements in this thread, so an
 * operation's statements would otherwise run back to back without letting timers or I/O in.
 *
 * @example
 * import { PGlite } from "@electric-sql/pglite";
 * const db = fromPglite(new PGlite("./latch-data"));
 * await migrate(db, { schema: "latch" });
 * const observations = new PostgresObservationStore(db, { schema: "latch" });
 */
export function fromPglite(db: PGliteLike): Queryable {
  return {
    ...session(db),
    transaction: (fn) => db.transaction((tx) => fn(session(tx))),
  };
}
