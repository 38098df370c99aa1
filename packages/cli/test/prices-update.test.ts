import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

// Hand-written maps in LiteLLM's format (per-token prices in exponent notation), not LiteLLM data.
const JAN = `{
  "model-a": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
  "model-b": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-06},
  "model-tts": {"mode": "audio_speech", "litellm_provider": "openai", "input_cost_per_character": 1.5e-05}
}`;
const APR = `{
  "model-a": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05},
  "model-c": {"mode": "embedding", "litellm_provider": "openai", "input_cost_per_token": 1.3e-07}
}`;

let dir: string;
let server: Server;
let base: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-update-"));
  await writeFile(join(dir, "jan.json"), JAN);
  await writeFile(join(dir, "apr.json"), APR);
  server = createServer((req, res) => {
    if (req.url !== "/map.json") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", etag: '"map-apr"' }).end(APR);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe("latch prices update", () => {
  it("shows the diff, writes the catalog, and is idempotent", async () => {
    const catalog = join(dir, "a.catalog.json");
    const args = ["prices", "update", "--from", join(dir, "jan.json"), "--catalog", catalog];
    const first = await runCli([...args, "--fetched-at", "2026-01-01T00:00:00Z", "--commit", "c1"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      "prices changed: 0, added: 2, removed: 0, unchanged: 0\n+ model-a\n+ model-b\n",
    );
    expect(first.stdout).toContain("not imported: 1 (unsupportedMode 1)");
    expect(first.stdout).toContain("written (2 snapshot(s) from 1 source(s))");
    const written = await readFile(catalog, "utf8");
    const parsed = JSON.parse(written);
    expect(parsed.sources[0]).toMatchObject({
      commit: "c1",
      licence: "MIT",
      fetchedAt: "2026-01-01T00:00:00.000Z",
    });
    expect(parsed.entries[0].snapshot.prices.input_tokens).toEqual({ perMillion: "2.5" });

    const before = await stat(catalog);
    const again = await runCli([...args, "--fetched-at", "2026-02-01T00:00:00Z"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("prices changed: 0, added: 0, removed: 0, unchanged: 2");
    expect(again.stdout).toContain("unchanged, nothing written");
    expect(await readFile(catalog, "utf8")).toBe(written);
    expect((await stat(catalog)).mtimeMs).toBe(before.mtimeMs);
  });

  it("fetches a URL (recording its ETag), reports changed, added and removed prices; --dry-run writes nothing", async () => {
    const catalog = join(dir, "b.catalog.json");
    const jan = ["prices", "update", "--from", join(dir, "jan.json"), "--catalog", catalog];
    expect((await runCli([...jan, "--fetched-at", "2026-01-01"])).code).toBe(0);
    const written = await readFile(catalog, "utf8");

    const apr = [
      "prices",
      "update",
      "--from",
      `${base}/map.json`,
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-04-01",
    ];
    const dry = await runCli([...apr, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      "prices changed: 1, added: 1, removed: 1, unchanged: 0\n~ model-a: input_tokens\n+ model-c\n- model-b\n",
    );
    expect(dry.stdout).toContain("dry run, nothing written");
    expect(await readFile(catalog, "utf8")).toBe(written);

    const real = await runCli(apr);
    expect(real.code).toBe(0);
    const parsed = JSON.parse(await readFile(catalog, "utf8"));
    expect(parsed.sources[1]).toMatchObject({ url: `${base}/map.json`, etag: '"map-apr"' });
    expect(
      parsed.entries.map((e: { snapshot: { snapshotId: string; effectiveUntil?: string } }) => [
        e.snapshot.snapshotId,
        e.snapshot.effectiveUntil,
      ]),
    ).toEqual([
      ["litellm:model-a:2026-01-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
      ["litellm:model-b:2026-01-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
      ["litellm:model-a:2026-04-01T00:00:00.000Z", undefined],
      ["litellm:model-c:2026-04-01T00:00:00.000Z", undefined],
    ]);
    expect((await readdir(dir)).filter((f) => f.endsWith(".partial"))).toEqual([]);
  });

  it("fails without writing on a missing file, an HTTP error or a map that is not JSON", async () => {
    const catalog = join(dir, "c.catalog.json");
    const missing = await runCli([
      "prices",
      "update",
      "--from",
      join(dir, "nope.json"),
      "--catalog",
      catalog,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("--from: cannot read the file (ENOENT)");
    const http = await runCli(["prices", "update", "--from", `${base}/gone.json`, "--catalog", catalog]);
    expect(http.code).toBe(1);
    expect(http.stderr).toContain("the server answered HTTP 404");
    await writeFile(join(dir, "bad.json"), "{ not json");
    const bad = await runCli(["prices", "update", "--from", join(dir, "bad.json"), "--catalog", catalog]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("prices update:");
    const usage = await runCli(["prices", "update", "--catalog", catalog]);
    expect(usage.code).toBe(2);
    await expect(stat(catalog)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("latch prices update --max-removed", () => {
  it("refuses a map that would remove more prices than allowed (a partial map), and writes nothing", async () => {
    const catalog = join(dir, "guard.catalog.json");
    const full = `{${Array.from(
      { length: 30 },
      (_, i) => `"m-${i}": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-06}`,
    ).join(",")}}`;
    const partial = `{"m-0": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-06}}`;
    await writeFile(join(dir, "full.json"), full);
    await writeFile(join(dir, "partial.json"), partial);
    const run = (from: string, at: string, ...extra: string[]) =>
      runCli([
        "prices",
        "update",
        "--from",
        join(dir, from),
        "--catalog",
        catalog,
        "--fetched-at",
        at,
        ...extra,
      ]);
    expect((await run("full.json", "2026-01-01T00:00:00Z")).code).toBe(0);
    const before = await readFile(catalog, "utf8");
    const refused = await run("partial.json", "2026-02-01T00:00:00Z");
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("removed: 29");
    expect(refused.stderr).toContain(
      "29 prices would be removed, more than --max-removed 25; nothing written. Check that the map is complete, or pass --max-removed 29",
    );
    expect(await readFile(catalog, "utf8")).toBe(before);
    expect((await run("partial.json", "2026-02-01T00:00:00Z", "--max-removed", "abc")).code).toBe(2);
    const allowed = await run("partial.json", "2026-02-01T00:00:00Z", "--max-removed", "29");
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain("written");
  });
});
