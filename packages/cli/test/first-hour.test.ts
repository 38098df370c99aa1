/**
 * The CLI findings of issue 21 ("a user's first hour"), one test each: `| head` ends quietly,
 * a missing price file is named as such, an import with no prices fails, a raw OpenAI response
 * line is read (with --tenant) or rejected saying what shape is expected, rejected lines exit 3
 * and leave no file behind unless asked, `--prices-file` is a deprecated alias of `--prices`.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli } from "./support/cli.js";
import { PRICE_FILE, writeUsageLog } from "./support/usage-log.js";

let dir: string;
let prices: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-first-hour-"));
  prices = join(dir, "prices.json");
  await writeFile(prices, JSON.stringify(PRICE_FILE));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `latch <args>` and closes its stdout after the first chunk, as `| head -1` does. */
async function pipedToHead(args: string[]) {
  const { child, done } = startCli(args, { cwd: dir });
  child.stdout?.once("data", () => child.stdout?.destroy());
  return done;
}

describe("latch … | head", () => {
  it("rate and lines stop quietly with exit 0 when the reader goes away (no EPIPE stack trace)", async () => {
    const log = join(dir, "head.jsonl");
    await writeUsageLog(log, 20_000);
    const rate = await pipedToHead(["rate", log, "--prices", prices, "--no-progress"]);
    expect(rate.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(rate.code).toBe(0);

    const records = join(dir, "head-rated.jsonl");
    const rated = await runCli(["rate", log, "--prices", prices, "-o", records, "--no-progress"]);
    expect(rated.code).toBe(0);
    const lines = await pipedToHead(["lines", "--records", records, "--json"]);
    expect(lines.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(lines.code).toBe(0);
  }, 120_000);
});

describe("latch prices", () => {
  it("show without a price file says the file is missing and how to name one, not that the model is unknown", async () => {
    const run = await runCli(["prices", "show", "gpt-4o"], {
      cwd: dir,
      env: { LATCH_PRICES_FILE: undefined },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /the price file is missing: latch-prices\.json \(the default; name another with --prices <file> or LATCH_PRICES_FILE\) does not exist/,
    );
    expect(run.stderr).not.toMatch(/gpt-4o/);

    const fromEnv = await runCli(["prices", "show", "gpt-4o"], {
      cwd: dir,
      env: { LATCH_PRICES_FILE: join(dir, "nowhere.json") },
    });
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr).toMatch(/nowhere\.json \(named by LATCH_PRICES_FILE\) does not exist/);
  });

  it('import of {"hello":"world"} fails naming the field a price file needs, and writes nothing', async () => {
    await writeFile(join(dir, "hello.json"), '{"hello":"world"}');
    const target = join(dir, "hello-prices.json");
    const run = await runCli(["prices", "import", join(dir, "hello.json"), "--prices", target]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /holds no prices: it is neither a Latch price file \(missing field "snapshots"\) nor a LiteLLM cost map/,
    );
    expect(run.stderr).not.toMatch(/world/);
    expect((await readdir(dir)).includes("hello-prices.json")).toBe(false);
  });

  it("--prices-file still works as a deprecated alias of --prices, with a warning", async () => {
    const run = await runCli(["prices", "show", "gpt-4o", "--prices-file", prices, "--at", "2026-03-01"]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("latch: warning: --prices-file is deprecated; use --prices");
    expect(run.stdout).toMatch(/snapshot test:gpt-4o:2026-01/);

    const both = await runCli([
      "prices",
      "show",
      "gpt-4o",
      "--prices-file",
      prices,
      "--prices",
      "other.json",
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--prices-file: a deprecated alias of --prices; give only one of them/);
  });
});

/** A Chat Completions body as a gateway logs it whole (shape of the public API reference; values made up). */
const chatCompletion = JSON.stringify({
  id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  object: "chat.completion",
  created: 1_772_357_400, // 2026-03-01T09:30:00Z
  model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
  usage: {
    prompt_tokens: 2_000,
    completion_tokens: 500,
    total_tokens: 2_500,
    prompt_tokens_details: { cached_tokens: 1_500 },
  },
  service_tier: "default",
});

describe("latch rate: line shapes", () => {
  it("reads a whole raw OpenAI response line with --tenant: event id from its id, time from created, model matched", async () => {
    const log = join(dir, "raw.jsonl");
    await writeFile(log, `${chatCompletion}\n`);
    const out = join(dir, "raw-rated.jsonl");
    const run = await runCli([
      "rate",
      log,
      "--prices",
      prices,
      "-o",
      out,
      "--tenant",
      "acme",
      "--no-progress",
    ]);
    expect(run.stderr).not.toMatch(/^latch: /m);
    expect(run.code).toBe(0);
    const record = JSON.parse(await readFile(out, "utf8"));
    // 500 uncached × 2.5 + 1,500 cached × 1.25 + 500 output × 10, per million
    expect(record).toMatchObject({
      eventId: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT:0:openai",
      total: "0.008125",
      modelMatch: { rule: "dated_suffix", matchedModel: "gpt-4o" },
      observation: {
        subject: { tenantId: "acme" },
        meters: { input_tokens: 500, cached_input_tokens: 1_500, output_tokens: 500 },
        timing: { completedAt: "2026-03-01T09:30:00.000Z" },
      },
    });
  });

  it("reads a raw OpenAI Responses body the same way (time from created_at)", async () => {
    const body = {
      id: "resp_68af4030592c81938ec0a5fbab4a3e9f",
      object: "response",
      created_at: 1_772_357_400,
      status: "completed",
      model: "gpt-4o-2024-08-06",
      output: [],
      usage: {
        input_tokens: 2_000,
        input_tokens_details: { cached_tokens: 1_500 },
        output_tokens: 500,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 2_500,
      },
    };
    const log = join(dir, "raw-responses.jsonl");
    await writeFile(log, `${JSON.stringify(body)}\n`);
    const out = join(dir, "raw-responses-rated.jsonl");
    const run = await runCli([
      "rate",
      log,
      "--prices",
      prices,
      "-o",
      out,
      "--tenant",
      "acme",
      "--no-progress",
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(await readFile(out, "utf8"))).toMatchObject({
      eventId: "resp_68af4030592c81938ec0a5fbab4a3e9f:0:openai",
      total: "0.008125",
      observation: { timing: { completedAt: "2026-03-01T09:30:00.000Z" } },
    });
  });

  it("without --tenant a raw response is rejected naming --tenant; an unknown shape names the fields expected", async () => {
    const log = join(dir, "shapes.jsonl");
    await writeFile(log, `${chatCompletion}\n{"hello":"world"}\n`);
    const rejects = join(dir, "shapes-rejects.jsonl");
    const run = await runCli(["rate", log, "--prices", prices, "--rejects", rejects, "--no-progress"]);
    expect(run.code).toBe(3);
    const lines = (await readFile(rejects, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ line: 1, code: "invalid_input", field: "subject.tenantId" });
    expect(lines[0].reason).toContain("pass --tenant <id>");
    expect(lines[1]).toMatchObject({ line: 2, code: "invalid_input" });
    expect(lines[1].reason).toContain('missing field "api"');
    expect(lines[1].reason).toContain('or "eventId" (a UsageObservation)');
    expect(lines[1].reason).not.toContain("expected a string");
  });

  it("4 of 8 lines rejected: exit 3, the first ones on stderr, and no latch-rejects.jsonl in the working directory", async () => {
    const bad = (i: number) => (i % 4 === 0 ? "not json" : `{"line":${i}}`);
    const log = join(dir, "half.jsonl");
    const work = await mkdtemp(join(dir, "cwd-"));
    await writeUsageLog(log, 8, new Map([0, 2, 4, 6].map((i) => [i, bad(i)])));
    const run = await runCli(["rate", log, "--prices", prices, "--no-progress"], { cwd: work });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/rejected lines:\n {2}line 1: /);
    expect(run.stderr).toMatch(
      /^latch: 4 of 8 line\(s\) rejected \(add --rejects <file> to keep every rejected line; --allow-rejects exits 0\)$/m,
    );
    expect(await readdir(work)).toEqual([]);
  });
});
