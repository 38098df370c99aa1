import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CurrencyMismatchError, LatchError } from "../../src/errors/index.js";
import { exportPending, FileExporter } from "../../src/export/index.js";
import { MemoryRatedRecordStore } from "../../src/memory/index.js";
import { ArrayChangeLog, rec } from "./helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "latch-currency-export-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe("a correction in another currency and the billing export", () => {
  it("is what used to stop the export for good: the row's cost delta cannot be computed", async () => {
    // What a store that accepted it would hand the exporter (the behaviour before the rule).
    const log = new ArrayChangeLog();
    log.append(
      rec({ requestId: "a", total: "0.004" }),
      rec({ requestId: "a", version: 2, total: "0.5", currency: "EUR" }),
    );
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => log.get(id) });
    await expect(exportPending({ store: log, exporter })).rejects.toMatchObject({ kind: "invalid_data" });
    expect(await log.getCursor("default")).toBeUndefined();
  });

  it("is refused by the store, so the export passes the event and every later version", async () => {
    const store = new MemoryRatedRecordStore();
    const exporter = new FileExporter({ directory: dir, previousVersion: (id) => store.get(id) });
    await store.put(rec({ requestId: "a", total: "0.004" }));
    const refused = await store
      .put(rec({ requestId: "a", version: 2, total: "0.5", currency: "EUR" }))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CurrencyMismatchError);
    expect(LatchError.isInstance(refused) && refused.code).toBe("currency_mismatch");
    expect(refused).toMatchObject({
      eventId: "a:0:openai",
      path: "currency",
      expected: "USD",
      actual: "EUR",
    });

    await store.put(rec({ requestId: "b", total: "1.25", currency: "EUR" }));
    await store.put(rec({ requestId: "a", version: 2, total: "0.003" }));
    const first = await exportPending({ store, exporter });
    expect(first).toMatchObject({ batches: 1, rows: 3 });
    expect(await store.getCursor("default")).toBe("3");

    // The cursor moves on: later versions export too.
    await store.put(rec({ requestId: "a", version: 3, total: "0.002" }));
    expect(await exportPending({ store, exporter })).toMatchObject({ batches: 1, rows: 1 });
    expect(await store.getCursor("default")).toBe("4");
  });
});
