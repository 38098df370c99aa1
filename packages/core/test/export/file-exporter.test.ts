import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ExportError, LatchValidationError } from "../../src/errors/index.js";
import {
  BILLING_COLUMNS,
  type BillingManifest,
  buildBillingRows,
  type ExportFileSystem,
  FileExporter,
  sha256Hex,
  toCsv,
  toJsonl,
} from "../../src/export/index.js";
import { entry, listFiles, rec } from "./helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "latch-file-exporter-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const a1 = rec({ requestId: "a", total: "0.004", completedAt: "2026-02-28T23:59:59Z" });
const b1 = rec({ requestId: "b", total: "0.0031", completedAt: "2026-03-01T00:00:00Z" });
const a2 = rec({ requestId: "a", version: 2, total: "0.0029", completedAt: "2026-03-01T00:00:01Z" });
const batch = [entry(1, a1), entry(2, b1), entry(3, a2)];

const ROOT = "bill/latch.billing-export.v1";
const PART_1 = `${ROOT}/dt=2026-02-28/part-0000000000000000000000000000000000000001-0000000000000000000000000000000000000001`;
const PART_2 = `${ROOT}/dt=2026-03-01/part-0000000000000000000000000000000000000002-0000000000000000000000000000000000000003`;
const MANIFEST = `${ROOT}/_manifests/b-1.json`;
const INTENT = `${ROOT}/_intents/b-1.json`;

/** node:fs/promises with every successful link recorded, and an optional fault before a link. */
function recordingFs(fault?: (final: string) => Error | undefined): {
  fs: ExportFileSystem;
  linked: string[];
} {
  const linked: string[] = [];
  const fs: ExportFileSystem = {
    ...fsp,
    link: async (from, to) => {
      const err = fault?.(String(to));
      if (err) throw err;
      await fsp.link(from, to);
      linked.push(path.relative(dir, String(to)).split(path.sep).join("/"));
    },
  };
  return { fs, linked };
}

async function rejection(p: Promise<unknown>): Promise<ExportError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExportError);
  return e as ExportError;
}

describe("FileExporter", () => {
  it("writes the intent, every part, then the manifest last", async () => {
    const { fs, linked } = recordingFs();
    const exporter = new FileExporter({ directory: dir, prefix: "/bill/", formats: ["csv", "jsonl.gz"], fs });
    const result = await exporter.export(batch, { batchId: "b-1" });

    expect(result).toEqual({
      keys: [`${PART_1}.jsonl.gz`, `${PART_1}.csv`, `${PART_2}.jsonl.gz`, `${PART_2}.csv`, MANIFEST],
      rows: 3,
      bytes: expect.any(Number),
      alreadyExported: false,
    });
    expect(linked).toEqual([INTENT, ...result.keys]);
    const files = await listFiles(dir);
    expect([...files.keys()].sort()).toEqual([...linked].sort()); // no temporary files left

    const rows = buildBillingRows(batch, new Map());
    expect(
      gunzipSync(files.get(`${PART_1}.jsonl.gz`) as Buffer).equals(Buffer.from(toJsonl(rows.slice(0, 1)))),
    ).toBe(true);
    expect(
      gunzipSync(files.get(`${PART_2}.jsonl.gz`) as Buffer).equals(Buffer.from(toJsonl(rows.slice(1)))),
    ).toBe(true);
    expect((files.get(`${PART_2}.csv`) as Buffer).equals(Buffer.from(toCsv(rows.slice(1))))).toBe(true);

    const manifest = JSON.parse((files.get(MANIFEST) as Buffer).toString("utf8")) as BillingManifest;
    expect(manifest.rows).toBe(3);
    expect(manifest.formats).toEqual(["jsonl.gz", "csv"]);
    expect(manifest.cursor).toEqual({ firstSeq: "1", lastSeq: "3" });
    expect(manifest.totalsByCurrency).toEqual({ USD: { costDeltaExact: "0.006", costDeltaMinorUnits: "1" } });
    expect(manifest.objects.map((o) => [o.key, o.rows])).toEqual([
      [`${PART_1}.jsonl.gz`, 1],
      [`${PART_1}.csv`, 1],
      [`${PART_2}.jsonl.gz`, 2],
      [`${PART_2}.csv`, 2],
    ]);
    for (const o of manifest.objects) {
      const bytes = files.get(o.key) as Buffer;
      expect(o.bytes).toBe(bytes.byteLength);
      expect(o.sha256).toBe(sha256Hex(bytes));
    }
    expect(await exporter.startedBatch("b-1")).toEqual({
      schema: "latch.billing-export.v1",
      batchId: "b-1",
      rows: 3,
      firstSeq: "1",
      lastSeq: "3",
      formats: ["jsonl.gz", "csv"],
    });
    expect(await exporter.startedBatch("b-2")).toBeUndefined();
  });

  it("writes nothing new on a rerun and says so", async () => {
    const first = new FileExporter({ directory: dir, prefix: "bill" });
    const r1 = await first.export(batch, { batchId: "b-1" });
    const before = await listFiles(dir);
    const { fs, linked } = recordingFs();
    const r2 = await new FileExporter({ directory: dir, prefix: "bill", fs }).export(batch, {
      batchId: "b-1",
    });
    expect(r2).toEqual({ ...r1, alreadyExported: true });
    expect(linked).toEqual([]);
    const after = await listFiles(dir);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [k, v] of before) expect(after.get(k)?.equals(v)).toBe(true);
  });

  it("refuses to replace an existing object with different content (invalid_data)", async () => {
    const target = path.join(dir, ...`${PART_2}.jsonl.gz`.split("/"));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await fsp.writeFile(target, gzipSync("something else\n"));
    const exporter = new FileExporter({ directory: dir, prefix: "bill" });
    const err = await rejection(exporter.export(batch, { batchId: "b-1" }));
    expect(err.kind).toBe("invalid_data");
    expect(err.isRetryable).toBe(false);
    expect(gunzipSync(await fsp.readFile(target)).toString()).toBe("something else\n");
    const files = await listFiles(dir);
    expect(files.has(MANIFEST)).toBe(false);
  });

  it("accepts an existing gzip part compressed differently and lists the stored bytes", async () => {
    const rows = buildBillingRows(batch, new Map());
    const other = gzipSync(toJsonl(rows.slice(1)), { level: 1 });
    const target = path.join(dir, ...`${PART_2}.jsonl.gz`.split("/"));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await fsp.writeFile(target, other);
    const result = await new FileExporter({ directory: dir, prefix: "bill" }).export(batch, {
      batchId: "b-1",
    });
    expect(result.alreadyExported).toBe(false);
    const manifest = JSON.parse(
      await fsp.readFile(path.join(dir, ...MANIFEST.split("/")), "utf8"),
    ) as BillingManifest;
    const listed = manifest.objects.find((o) => o.key === `${PART_2}.jsonl.gz`);
    expect(listed?.sha256).toBe(sha256Hex(other));
    expect(listed?.bytes).toBe(other.byteLength);
  });

  it("a process killed between writing an object and linking it leaves a temp file that the rerun removes", async () => {
    // The "kill": the link of the second part never happens (the process is frozen there, as
    // if killed), so its fsynced temporary file stays behind.
    let frozen = false;
    const killed = new FileExporter({
      directory: dir,
      prefix: "bill",
      fs: {
        ...fsp,
        link: async (from, to) => {
          if (String(to).includes("part-0000000000000000000000000000000000000002")) {
            frozen = true;
            return new Promise<void>(() => {});
          }
          await fsp.link(from, to);
        },
      },
    });
    void killed.export(batch, { batchId: "b-1" });
    // Up to ~30 s (was ~5 s): a loaded machine may take seconds to reach the second part.
    for (let i = 0; i < 3_000 && !frozen; i++) await new Promise((r) => setTimeout(r, 10));
    expect(frozen).toBe(true);
    const temps = async () =>
      [...(await listFiles(dir)).keys()].filter((k) => k.endsWith(".tmp")).map((k) => path.basename(k));
    expect(await temps()).toHaveLength(1);
    // A fresh exporter keeps a young temp file (another process may still be writing it) …
    await new FileExporter({ directory: dir, prefix: "bill" }).export(batch, { batchId: "b-1" });
    expect(await temps()).toHaveLength(1);
    // … and removes it once it is older than staleTempAfterMs, on its first write there.
    const rerun = new FileExporter({ directory: dir, prefix: "bill", staleTempAfterMs: 0 });
    const result = await rerun.export(batch, { batchId: "b-1" });
    expect(result.alreadyExported).toBe(true);
    expect(await temps()).toEqual([]);
    expect(() => new FileExporter({ directory: dir, staleTempAfterMs: -1 })).toThrow(LatchValidationError);
  });

  it("recovers from a crash between the parts and the manifest with exactly the same files", async () => {
    const crash = recordingFs((to) => (to.includes("_manifests") ? new Error("power cut") : undefined));
    const crashed = new FileExporter({
      directory: dir,
      prefix: "bill",
      formats: ["jsonl.gz", "csv"],
      fs: crash.fs,
    });
    const err = await rejection(crashed.export(batch, { batchId: "b-1" }));
    expect(err.kind).toBe("connection");
    expect(crash.linked).toEqual([
      INTENT,
      `${PART_1}.jsonl.gz`,
      `${PART_1}.csv`,
      `${PART_2}.jsonl.gz`,
      `${PART_2}.csv`,
    ]);
    expect((await listFiles(dir)).has(MANIFEST)).toBe(false);

    const rerun = await new FileExporter({
      directory: dir,
      prefix: "bill",
      formats: ["jsonl.gz", "csv"],
    }).export(batch, { batchId: "b-1" });
    expect(rerun.alreadyExported).toBe(false);
    expect(rerun.keys.at(-1)).toBe(MANIFEST);

    const clean = await fsp.mkdtemp(path.join(os.tmpdir(), "latch-file-exporter-clean-"));
    try {
      await new FileExporter({ directory: clean, prefix: "bill", formats: ["jsonl.gz", "csv"] }).export(
        batch,
        {
          batchId: "b-1",
        },
      );
      const got = await listFiles(dir);
      const want = await listFiles(clean);
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [k, v] of want) expect(got.get(k)?.equals(v)).toBe(true);
    } finally {
      await fsp.rm(clean, { recursive: true, force: true });
    }
  });

  it("maps permission errors to auth and other file-system errors to connection", async () => {
    const failing = (code: string): ExportFileSystem => ({
      ...fsp,
      open: async () => {
        throw Object.assign(new Error(code), { code });
      },
    });
    for (const [code, kind, retryable] of [
      ["EACCES", "auth", false],
      ["EPERM", "auth", false],
      ["ENOSPC", "connection", true],
      ["EIO", "connection", true],
    ] as const) {
      const err = await rejection(
        new FileExporter({ directory: dir, fs: failing(code) }).export(batch, { batchId: "b-1" }),
      );
      expect([err.kind, err.isRetryable, err.message.includes(code)]).toEqual([kind, retryable, true]);
    }
  });

  it("checks the signal between objects", async () => {
    const controller = new AbortController();
    const { fs, linked } = recordingFs((to) => {
      if (to.includes("_intents")) controller.abort(new Error("stop"));
      return undefined;
    });
    const exporter = new FileExporter({ directory: dir, prefix: "bill", fs });
    await expect(exporter.export(batch, { batchId: "b-1" }, controller.signal)).rejects.toThrow("stop");
    expect(linked).toEqual([INTENT]);
    const aborted = AbortSignal.abort(new Error("before"));
    await expect(exporter.export(batch, { batchId: "b-2" }, aborted)).rejects.toThrow("before");
  });

  it("finds superseded versions of earlier batches through previousVersion, and never guesses", async () => {
    const later = [
      entry(4, rec({ requestId: "b", version: 2, total: "0.0041", completedAt: "2026-03-01T00:00:00Z" })),
    ];
    const plain = new FileExporter({ directory: dir, prefix: "bill" });
    expect((await rejection(plain.export(later, { batchId: "b-4" }))).kind).toBe("invalid_data");
    expect(await listFiles(dir)).toEqual(new Map());

    const asked: string[] = [];
    const withLookup = new FileExporter({
      directory: dir,
      prefix: "bill",
      formats: ["csv"],
      previousVersion: async (id) => {
        asked.push(id);
        return id === b1.ratedRecordId ? b1 : undefined;
      },
    });
    await withLookup.export(later, { batchId: "b-4" });
    expect(asked).toEqual(["b:0:openai:v1"]);
    const csv = await fsp.readFile(
      path.join(
        dir,
        ...`${ROOT}/dt=2026-03-01/part-0000000000000000000000000000000000000004-0000000000000000000000000000000000000004.csv`.split(
          "/",
        ),
      ),
      "utf8",
    );
    const cost = BILLING_COLUMNS.indexOf("cost"); // cost, cost_delta, cost_minor_units, currency
    expect(
      csv
        .split("\r\n")[1]
        ?.split(",")
        .slice(cost, cost + 4),
    ).toEqual(["0.0041", "0.001", "0", "USD"]);
  });

  it("writes gzipped CSV and formats whose encoder is passed in", async () => {
    const encoded: number[] = [];
    const exporter = new FileExporter({
      directory: dir,
      prefix: "bill",
      formats: ["parquet", "csv.gz"],
      encoders: {
        parquet: (rows) => {
          encoded.push(rows.length);
          return new TextEncoder().encode(rows.map((r) => r.rated_record_id).join("\n"));
        },
      },
    });
    const result = await exporter.export(batch, { batchId: "b-1" });
    expect(result.keys).toEqual([
      `${PART_1}.csv.gz`,
      `${PART_1}.parquet`,
      `${PART_2}.csv.gz`,
      `${PART_2}.parquet`,
      MANIFEST,
    ]);
    expect(encoded).toEqual([1, 2]);
    const csv = gunzipSync(await fsp.readFile(exporter.pathOf(`${PART_2}.csv.gz`))).toString("utf8");
    expect(csv.split("\r\n").filter((l) => l !== "")).toHaveLength(3); // header + 2 rows
    const parquet = await fsp.readFile(exporter.pathOf(`${PART_2}.parquet`), "utf8");
    expect(parquet).toBe([b1, a2].map((r) => r.ratedRecordId).join("\n"));
  });

  it("validates its options and the batch id", async () => {
    const path0 = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(LatchValidationError);
        return (e as LatchValidationError).issues[0]?.path;
      }
      return "no error";
    };
    expect(path0(() => new FileExporter({ directory: "" }))).toBe("directory");
    expect(path0(() => new FileExporter({ directory: dir, prefix: "a/../b" }))).toBe("prefix");
    expect(path0(() => new FileExporter({ directory: dir, formats: [] }))).toBe("formats");
    // parquet has no built-in encoder: it must be passed in.
    expect(path0(() => new FileExporter({ directory: dir, formats: ["parquet"] }))).toBe("formats");
    const exporter = new FileExporter({ directory: dir });
    await expect(exporter.export(batch, { batchId: "../escape" })).rejects.toBeInstanceOf(
      LatchValidationError,
    );
    expect(await exporter.export([], { batchId: "b-0" })).toEqual({
      keys: [],
      rows: 0,
      bytes: 0,
      alreadyExported: false,
    });
    expect(await listFiles(dir)).toEqual(new Map());
  });
});
