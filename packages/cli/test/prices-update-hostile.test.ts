import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCostMap } from "../src/commands/read-cost-map.js";
import type { CliContext } from "../src/context.js";
import { runCli } from "./support/cli.js";

// Hostile or broken map sources: hand-written maps in LiteLLM's format, served from loopback.
const MAP = `{"m": {"mode": "chat", "input_cost_per_token": 1e-06}}`;
const ESC = "\u001b";

let dir: string;
let server: Server;
let base: string;
const open = new Set<import("node:net").Socket>();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-hostile-"));
  server = createServer((req, res) => {
    if (req.url === "/empty-etag") res.writeHead(200, { etag: "" }).end(MAP);
    else if (req.url === "/huge-declared")
      res.writeHead(200, { "content-length": String(65 * 1024 * 1024) }).end();
    else if (req.url === "/chunked") {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      for (let i = 0; i < 32; i++) res.write(chunk);
      res.end(MAP);
    } else if (req.url === "/cut") {
      res.writeHead(200, { "content-length": "1000" });
      res.write(MAP.slice(0, 20));
      setTimeout(() => res.destroy(), 100);
    } else if (req.url === "/stall") {
      res.writeHead(200, { "content-length": "1000" });
      res.write("{"); // and never more
    } else res.writeHead(404).end();
  });
  server.on("connection", (s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of open) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const ctx = { signal: new AbortController().signal } as CliContext;

describe("latch prices update: hostile sources", () => {
  it("never writes a control character from the map to the terminal in an error", async () => {
    const from = join(dir, "evil.json");
    // A truncated map whose model id (JSON-escaped) holds an ANSI sequence: the parse error names the model.
    await writeFile(from, `{"\\u001b[2J\\u001b]0;pwned\\u0007m": {"input_cost_per_token": 1e-06, "x": "cut`);
    const run = await runCli(["prices", "update", "--from", from, "--catalog", join(dir, "e.catalog.json")]);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toContain(ESC);
    expect(run.stderr).not.toContain("\u0007");
    expect(run.stderr).toContain("\\u001b[2J");
  });

  it("an empty ETag is left out of the attribution instead of failing the update", async () => {
    const run = await runCli([
      "prices",
      "update",
      "--from",
      `${base}/empty-etag`,
      "--catalog",
      join(dir, "etag.catalog.json"),
      "--dry-run",
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("+ m\n");
  });

  it("refuses a response declared larger than the limit without reading it", async () => {
    const run = await runCli([
      "prices",
      "update",
      "--from",
      `${base}/huge-declared`,
      "--catalog",
      join(dir, "h.catalog.json"),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      "latch: prices update: --from: the map is larger than 64 MiB; refusing to read it\n",
    );
  });

  it("refuses a body past the limit while streaming (no Content-Length)", async () => {
    await expect(readCostMap(`${base}/chunked`, undefined, ctx, { maxBytes: 1024 * 1024 })).rejects.toThrow(
      "--from: the map is larger than 1 MiB",
    );
  });

  it("a file path that never ends (a device, a pipe: size 0 on stat) is cut at the limit", async () => {
    await expect(readCostMap("/dev/zero", undefined, ctx, { maxBytes: 1024 * 1024 })).rejects.toThrow(
      "--from: the map is larger than 1 MiB",
    );
  });

  it("a body cut off before its Content-Length is named, exit 1", async () => {
    const run = await runCli([
      "prices",
      "update",
      "--from",
      `${base}/cut`,
      "--catalog",
      join(dir, "c.catalog.json"),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("latch: prices update: --from: the download was cut off before its end\n");
  });

  it("a stalled server times out instead of hanging the update", async () => {
    await expect(readCostMap(`${base}/stall`, undefined, ctx, { timeoutMs: 1500 })).rejects.toThrow(
      "--from: the download was cut off before its end (timed out)",
    );
  });

  it("file:// and other schemes are a usage error (exit 2), not a missing file", async () => {
    const run = await runCli(["prices", "update", "--from", `file://${join(dir, "evil.json")}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "latch: prices update: --from: expected an http:// or https:// URL, or a file path\n",
    );
  });

  it("an update never runs beside another on the same catalog (no lost update): the lock makes the second fail", async () => {
    const from = join(dir, "ok.json");
    await writeFile(from, MAP);
    const catalog = join(dir, "locked.catalog.json");
    const first = await runCli([
      "prices",
      "update",
      "--from",
      from,
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-01-01T00:00:00Z",
    ]);
    expect(first.code).toBe(0);
    await expect(stat(`${catalog}.lock`)).rejects.toMatchObject({ code: "ENOENT" }); // released
    const before = await readFile(catalog, "utf8");
    // Another update holds the lock (written as the real one would be).
    await writeFile(`${catalog}.lock`, `${JSON.stringify({ pid: 1, since: "2026-02-01T00:00:00Z" })}\n`);
    const second = await runCli([
      "prices",
      "update",
      "--from",
      from.replace("ok.json", "ok2.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-02-01T00:00:00Z",
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe("latch: prices update: --from: cannot read the file (ENOENT)\n");
    await writeFile(from.replace("ok.json", "ok2.json"), MAP.replace("1e-06", "2e-06"));
    const third = await runCli([
      "prices",
      "update",
      "--from",
      from.replace("ok.json", "ok2.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-02-01T00:00:00Z",
    ]);
    expect(third.code).toBe(1);
    expect(third.stderr).toBe(
      `latch: prices update: ${catalog}.lock exists: another update of this catalog is running (if none is, one was killed: remove the file)\n`,
    );
    expect(await readFile(catalog, "utf8")).toBe(before);
    await stat(`${catalog}.lock`); // not taken over or removed by the refused run
    await rm(`${catalog}.lock`);
    const fourth = await runCli([
      "prices",
      "update",
      "--from",
      from.replace("ok.json", "ok2.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-02-01T00:00:00Z",
    ]);
    expect(fourth.code).toBe(0);
    expect(fourth.stdout).toContain("~ m: input_tokens\n");
  });
});
