import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { sumDecimals } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestS3, type TestS3 } from "../../s3/test/support/s3-server.js";
import { runCli, startCli, waitForStderr } from "./support/cli.js";
import { PRICE_FILE, writeUsageLog } from "./support/usage-log.js";

let dir: string;
let s3: TestS3;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-export-"));
  await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every file under a folder, as keys relative to it (`a/b/c`). */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)).split("\\").join("/"))
    .sort();
}

interface Manifest {
  rows: number;
  objects: Array<{ key: string; format: string; rows: number; sha256: string }>;
  totalsByCurrency: Record<string, { costDeltaExact: string }>;
}

/** Reads an export through its manifests: every JSONL row, and the manifests' totals per currency. */
async function consume(keys: string[], get: (key: string) => Promise<Uint8Array>) {
  const rows: Array<Record<string, unknown>> = [];
  const amounts = new Map<string, string[]>();
  let manifests = 0;
  for (const key of keys.filter((k) => k.includes("/_manifests/"))) {
    manifests++;
    const manifest = JSON.parse(Buffer.from(await get(key)).toString("utf8")) as Manifest;
    for (const [currency, t] of Object.entries(manifest.totalsByCurrency)) {
      amounts.set(currency, [...(amounts.get(currency) ?? []), t.costDeltaExact]);
    }
    for (const object of manifest.objects.filter((o) => o.format === "jsonl.gz")) {
      const text = gunzipSync(await get(object.key)).toString("utf8");
      for (const line of text.split("\n")) if (line !== "") rows.push(JSON.parse(line));
    }
  }
  const totals = Object.fromEntries(
    [...amounts.keys()].sort().map((c) => [c, sumDecimals(amounts.get(c) ?? [])]),
  );
  return { rows, totals, manifests };
}

async function rateLog(
  name: string,
  lines: number,
): Promise<{ rated: string; totals: Record<string, string> }> {
  const log = join(dir, `${name}.jsonl`);
  await writeUsageLog(log, lines);
  const rated = join(dir, `${name}-rated.jsonl`);
  const run = await runCli([
    "rate",
    log,
    "--prices",
    join(dir, "prices.json"),
    "-o",
    rated,
    "--json",
    "--rated-at",
    "2026-03-02T00:00:00Z",
  ]);
  expect(run.code).toBe(0);
  return { rated, totals: (JSON.parse(run.stdout) as { totals: Record<string, string> }).totals };
}

describe("latch export", () => {
  it("writes the same objects and rows into a folder and into S3, with the manifests' totals printed", async () => {
    const { rated, totals } = await rateLog("export", 20_000);
    const folder = join(dir, "billing");
    const common = [
      "export",
      "--records",
      rated,
      "--since",
      "0",
      "--batch-size",
      "2000",
      "--format",
      "jsonl.gz,csv",
    ];

    const toFolder = await runCli([...common, "--to", folder]);
    expect(toFolder.stderr).toMatch(/exporting: 20,000 rows/);
    expect(toFolder.code).toBe(0);
    expect(toFolder.stdout).toMatch(/^exported 20,000 rows in 10 batch\(es\) to /);
    expect(toFolder.stdout).toContain("manifests: 10, 20,000 rows");
    for (const [currency, amount] of Object.entries(totals)) {
      expect(toFolder.stdout).toContain(`cost_delta ${currency}: ${amount} exact`);
    }

    const bucket = await s3.createBucket();
    const env = {
      S3_ENDPOINT: s3.endpoint,
      S3_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    const toS3 = await runCli([...common, "--to", `s3://${bucket}/billing/prod`, "--json"], { env });
    expect(toS3.stderr).not.toMatch(/latch: /);
    expect(toS3.code).toBe(0);
    const s3Result = JSON.parse(toS3.stdout) as {
      rows: number;
      batches: number;
      totals: Array<{ currency: string; exact: string }>;
    };
    expect(s3Result).toMatchObject({ rows: 20_000, batches: 10 });
    expect(Object.fromEntries(s3Result.totals.map((t) => [t.currency, t.exact]))).toEqual(totals);

    // The same layout, object for object: data parts byte for byte; manifests and intents
    // alike once the bucket's prefix is taken out of the keys they list.
    const fileKeys = await listFiles(folder);
    const s3Keys = (await s3.list(bucket, "billing/prod/")).map((k) => k.slice("billing/prod/".length));
    expect(s3Keys).toEqual(fileKeys);
    for (const key of fileKeys) {
      const fromS3 = Buffer.from((await s3.get(bucket, `billing/prod/${key}`)) ?? new Uint8Array());
      const fromFile = await readFile(join(folder, key));
      if (key.endsWith(".json")) {
        expect(fromS3.toString("utf8").replaceAll("billing/prod/", ""), key).toBe(fromFile.toString("utf8"));
      } else {
        expect(fromS3.equals(fromFile), key).toBe(true);
      }
    }

    const fromFolder = await consume(fileKeys, (key) => readFile(join(folder, key)));
    const fromBucket = await consume(
      s3Keys.map((k) => `billing/prod/${k}`),
      async (key) => (await s3.get(bucket, key)) ?? new Uint8Array(),
    );
    expect(fromBucket.rows).toEqual(fromFolder.rows);
    expect(fromFolder.rows).toHaveLength(20_000);
    expect(new Set(fromFolder.rows.map((r) => r.rated_record_id)).size).toBe(20_000);
    expect(fromFolder.totals).toEqual(totals);
    expect(fromBucket.totals).toEqual(totals);

    // A rerun writes nothing new: every batch is found and verified.
    const again = await runCli([...common, "--to", `s3://${bucket}/billing/prod`], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/\(10 already there, verified\)/);
    expect((await s3.list(bucket, "billing/prod/")).length).toBe(s3Keys.length);

    // --since a time: only usage completed at or after it (the log spans 2026-03-01 00:00 to ~05:32 UTC).
    const since = await runCli([
      ...common.filter((a) => a !== "0" && a !== "--since"),
      "--since",
      "2026-03-01T05:00:00Z",
      "--to",
      join(dir, "late"),
      "--json",
    ]);
    expect(since.code).toBe(0);
    const late = JSON.parse(since.stdout) as { rows: number };
    const expected = fromFolder.rows.filter((r) => String(r.completed_at) >= "2026-03-01T05:00:00").length;
    expect(late.rows).toBe(expected);
    expect(late.rows).toBeGreaterThan(0);
  }, 600_000);

  it("Ctrl-C during an export leaves no partial file, and the rerun completes every row exactly once", async () => {
    const { rated, totals } = await rateLog("interrupt", 60_000);
    const folder = join(dir, "interrupted");
    const args = ["export", "--records", rated, "--to", folder, "--batch-size", "1000"];
    const { child, done } = startCli(args);
    await waitForStderr(child, (s) => /exporting: 1,000 rows/.test(s));
    child.kill("SIGINT");
    const interrupted = await done;
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(/interrupted/);

    const afterInterrupt = await listFiles(folder);
    const manifestsBefore = afterInterrupt.filter((k) => k.includes("/_manifests/")).length;
    expect(manifestsBefore).toBeLessThan(60);
    // No temporary file, and every object is whole (gzip checks its own length and CRC).
    expect(afterInterrupt.filter((k) => k.split("/").pop()?.startsWith("."))).toEqual([]);
    for (const key of afterInterrupt.filter((k) => k.endsWith(".gz"))) {
      expect(() => gunzipSync(readFileSync(join(folder, key))), key).not.toThrow();
    }

    const rerun = await runCli(args);
    expect(rerun.code).toBe(0);
    const keys = await listFiles(folder);
    const { rows, totals: exported, manifests } = await consume(keys, (key) => readFile(join(folder, key)));
    expect(manifests).toBe(60);
    expect(rows).toHaveLength(60_000);
    expect(new Set(rows.map((r) => r.rated_record_id)).size).toBe(60_000);
    expect(exported).toEqual(totals);
  }, 600_000);

  it("names the bad flag with exit code 2", async () => {
    const noTo = await runCli(["export", "--records", "x.jsonl"], {
      env: { LATCH_EXPORT_DIR: undefined, LATCH_S3_BUCKET: undefined },
    });
    expect(noTo.code).toBe(2);
    expect(noTo.stderr).toMatch(/--to: required/);
    const since = await runCli(["export", "--records", "x.jsonl", "--to", dir, "--since", "last-week"]);
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/--since: expected a change-log position/);
    const format = await runCli(["export", "--records", "x.jsonl", "--to", dir, "--format", "xml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format: unknown format "xml"/);
    const store = await runCli(["export", "--to", dir]);
    expect(store.code).toBe(2);
    expect(store.stderr).toMatch(/--records: the memory store starts empty/);
    const help = await runCli(["export", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--since <cursor\|time>/);
  });
});
