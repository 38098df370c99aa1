import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileExporter,
  MemoryApiKeyStore,
  MemoryCreditLedger,
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "@latch/core";
import {
  apiKeyStoreSuite,
  creditLedgerSuite,
  exporterSuite,
  observationStoreSuite,
  quotaReservatorSuite,
  ratedRecordStoreSuite,
  runConformance,
  usageCounterSuite,
} from "../src/index.js";

// The embedded default must pass exactly the suites every real backend passes.
runConformance({
  name: "memory",
  suites: [
    observationStoreSuite({ create: () => new MemoryObservationStore() }),
    ratedRecordStoreSuite({ create: () => new MemoryRatedRecordStore() }),
    quotaReservatorSuite({
      create: () => new MemoryQuotaReservator(),
      periods: {
        create: () => {
          // The real clock (rolling windows wait seconds), moved on by endPeriod.
          let skew = 0;
          const quota = new MemoryQuotaReservator({ clock: () => Date.now() + skew });
          return {
            quota,
            endPeriod: async (account) => {
              const { periodEnd } = await quota.balance(account);
              skew += Math.max(0, (periodEnd ?? 0) - (Date.now() + skew));
            },
            windowEntries: async (account) => quota.storedWindowEntries(account),
          };
        },
        atClock: (now) => new MemoryQuotaReservator({ clock: now }),
      },
      retention: {
        create: (holdRetentionMs) => {
          const quota = new MemoryQuotaReservator({ holdRetentionMs });
          // A fresh reservator per test: every record it keeps belongs to the test's accounts.
          return {
            store: quota,
            storedHolds: async () => quota.storedHolds,
            purge: () => quota.purgeResolvedHolds(),
          };
        },
      },
    }),
    usageCounterSuite({ create: () => new MemoryUsageCounter() }),
    creditLedgerSuite({
      create: () => new MemoryCreditLedger(),
      snapshots: (snapshotEvery, snapshotThinning) =>
        new MemoryCreditLedger(snapshotThinning ? { snapshotEvery, snapshotThinning } : { snapshotEvery }),
      retention: {
        create: (holdRetentionMs) => {
          const credits = new MemoryCreditLedger({ holdRetentionMs });
          return {
            store: credits,
            storedHolds: async () => credits.storedHolds,
            purge: () => credits.purgeResolvedHolds(),
          };
        },
      },
    }),
    apiKeyStoreSuite({ create: () => new MemoryApiKeyStore() }),
  ],
});

// Each test's exporter writes to a folder of its own; the folders go after the last test.
const folders: string[] = [];
runConformance({
  name: "file",
  teardown: () =>
    Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))).then(() => undefined),
  suites: [
    exporterSuite({
      create: async () => {
        const directory = await mkdtemp(join(tmpdir(), "latch-testkit-export-"));
        folders.push(directory);
        const read = {
          // An independent reader: the folder as it is on disk, keys with `/` separators.
          list: async () =>
            (await readdir(directory, { recursive: true, withFileTypes: true }))
              .filter((entry) => entry.isFile())
              .map((entry) =>
                join(entry.parentPath, entry.name)
                  .slice(directory.length + 1)
                  .split("\\")
                  .join("/"),
              ),
          get: (key: string) =>
            readFile(join(directory, ...key.split("/"))).then(
              (bytes) => new Uint8Array(bytes),
              () => undefined,
            ),
        };
        return { exporter: new FileExporter({ directory, formats: ["jsonl.gz", "csv"] }), read };
      },
    }),
  ],
});
