import type { RatedUsageRecord } from "@latch/core";
import type { ChangeLogStatus, ChangeLogStatusQuery, RatedRecordStore } from "@latch/core/adapter";
import { expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, sleep } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";

/** What the status cases need from the rated-record suite around them. */
export interface ChangeLogStatusCaseOptions {
  /** The store of the current test. */
  store: () => RatedRecordStore;
  /** A version-1 record of the current test, distinct per `n`. */
  record: (n: number) => RatedUsageRecord;
}

/** How long a status may show versions held back by someone else's short transaction. */
const SETTLE_MS = 20_000;

/**
 * `RatedRecordStore.changeLogStatus` cases, run inside `describeRatedRecordStore` on every
 * backend: the consumer's cursor, versions ready after it, the count limit, input errors.
 * What holds a log back is backend-specific (only PostgreSQL has open transactions), so these
 * cases wait out versions that another session on a shared server briefly holds back, and the
 * backend's own tests name the holder.
 */
export function changeLogStatusCases({ store, record }: ChangeLogStatusCaseOptions): void {
  /** The status once nothing after the cursor is held back (at once, but on a shared server). */
  async function settled(query: ChangeLogStatusQuery): Promise<ChangeLogStatus> {
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const result = await store().changeLogStatus?.(query);
      if (result === undefined) throw new Error("changeLogStatus returned nothing");
      if (result.waiting === 0 || Date.now() > deadline) return result;
      await sleep(50);
    }
  }

  /** Follows the log to its end (as far as it is handed out now) and saves that for `consumer`. */
  async function exportAll(consumer: string): Promise<string | undefined> {
    let cursor = await store().getCursor(consumer);
    for (;;) {
      const page = await store().listSince(cursor, 1_000);
      if (page.items.length === 0) break;
      cursor = page.cursor;
    }
    if (cursor !== undefined) await store().saveCursor(consumer, cursor);
    return cursor;
  }

  it("reports a consumer's cursor and the versions ready after it, up to a count limit", async () => {
    const consumer = uniqueId("exporter");
    expect(typeof store().changeLogStatus, "every Latch store implements changeLogStatus").toBe("function");
    await settled({}); // every version stored so far is handed out now
    const cursor = await exportAll(consumer);
    const before = await settled({ consumer });
    expect(before).toMatchObject({ consumer, cursor, ready: 0, waiting: 0, capped: false });

    for (const n of [1, 2, 3]) await store().put(record(n));
    const after = await settled({ consumer });
    expect(after).toMatchObject({ consumer, cursor, ready: 3, waiting: 0, capped: false });
    expect(await settled({ consumer, countLimit: 3 })).toMatchObject({ ready: 3, capped: false });
    expect(await settled({ consumer, countLimit: 2 })).toMatchObject({ ready: 2, capped: true });

    // An export moves the cursor (`settled` saw nothing held back): nothing is ready after it.
    const moved = await exportAll(consumer);
    expect(moved).not.toBe(cursor);
    expect(await settled({ consumer })).toMatchObject({ consumer, cursor: moved, ready: 0, waiting: 0 });

    // Without a consumer (or one that never saved) the counts start at the beginning.
    const whole = await settled({});
    expect(whole.cursor).toBeUndefined();
    expect(whole.consumer).toBeUndefined();
    expect(whole.ready).toBeGreaterThanOrEqual(3);
    const fresh = await settled({ consumer: uniqueId("never-saved") });
    expect(fresh.cursor).toBeUndefined();
    expect(fresh.ready).toBeGreaterThanOrEqual(3);
  });

  it("rejects a bad status query naming the field", async () => {
    const status = (query: unknown) =>
      store().changeLogStatus?.(query as ChangeLogStatusQuery) ?? Promise.reject(new Error("missing"));
    await expectInvalidInput(status({ consumer: "" }), "consumer");
    await expectInvalidInput(status({ consumer: 7 }), "consumer");
    await expectInvalidInput(status({ countLimit: 0 }), "countLimit");
    await expectInvalidInput(status({ countLimit: 1.5 }), "countLimit");
    await expectInvalidInput(status({ countLimit: 10_000_001 }), "countLimit");
    await expect(store().changeLogStatus?.({}, abortedSignal())).rejects.toThrow();
  });
}
