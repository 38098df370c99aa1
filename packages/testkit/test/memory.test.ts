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
  describeApiKeyStore,
  describeCreditLedger,
  describeExporter,
  describeObservationStore,
  describeQuotaReservator,
  describeRatedRecordStore,
  describeUsageCounter,
} from "../src/index.js";

// The embedded default must pass exactly the suites every real backend passes.
describeObservationStore({ name: "memory", create: () => new MemoryObservationStore() });
describeRatedRecordStore({ name: "memory", create: () => new MemoryRatedRecordStore() });
describeQuotaReservator({
  name: "memory",
  create: () => new MemoryQuotaReservator(),
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
});
describeUsageCounter({ name: "memory", create: () => new MemoryUsageCounter() });

const folders: string[] = [];
describeExporter({
  name: "file",
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
  cleanup: () =>
    Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))).then(() => undefined),
});

describeCreditLedger({
  name: "memory",
  create: () => new MemoryCreditLedger(),
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
});

describeApiKeyStore({ name: "memory", create: () => new MemoryApiKeyStore() });
