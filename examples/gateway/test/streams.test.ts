/**
 * Streams that do not go by the book, through the gateway on the embedded default:
 * - slow streams (longer than the provider timeout, still sending) complete and are billed
 *   from the provider's own usage;
 * - a provider that drops the connection mid-stream, and a client that goes away mid-stream,
 *   leave no hold open and are billed for what was served (estimated, never free);
 * - Gemini's `:streamGenerateContent` without `alt=sse` (a JSON array, not SSE) is billed from
 *   its usage, like the SSE form.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch, RatedUsageRecord } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type FakeProvider, type ProviderFault, startFakeProvider } from "../src/fake-provider.js";
import { type Gateway, startGateway } from "../src/gateway.js";

// The provider timeout bounds the first byte and, as the idle timeout, every silence inside a
// stream: 2 s leaves a loaded machine 1.8 s over the fake's 200 ms between events (with 1 s and
// 100 ms, a stall of 0.9 s in this process, which runs the provider too, cut a stream or made
// a 504).
const PROVIDER_TIMEOUT_MS = 2_000;
const SLOW_EVENT_MS = 200;

const faults = new Map<string, ProviderFault>();
let dir: string;
let provider: FakeProvider;
let backends: GatewayBackends;
let latch: Latch;
let gateway: Gateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-streams-"));
  provider = await startFakeProvider({ fault: (id) => faults.get(id), slowEventMs: SLOW_EVENT_MS });
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "streams" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl") });
  gateway = await startGateway({ latch, providerUrl: provider.url, providerTimeoutMs: PROVIDER_TIMEOUT_MS });
  await latch.ready();
});

afterAll(async () => {
  await gateway?.close();
  await provider?.close();
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

type Shape = "openai" | "anthropic" | "gemini-sse" | "gemini-array";

/** A streamed request of `shape` with ~`maxTokens` output (the fake sends one event per 8 tokens). */
function request(shape: Shape, maxTokens: number): { path: string; body: unknown; responsePrefix: string } {
  const prompt = "Summarise the quarterly report in detail. ".repeat(20);
  if (shape === "openai") {
    return {
      path: "/v1/chat/completions",
      body: {
        model: "gpt-4o",
        messages: [{ role: "user", content: prompt }],
        max_tokens: maxTokens,
        stream: true,
      },
      responsePrefix: "chatcmpl-",
    };
  }
  if (shape === "anthropic") {
    return {
      path: "/v1/messages",
      body: {
        model: "claude-sonnet-4-5",
        messages: [{ role: "user", content: prompt }],
        max_tokens: maxTokens,
        stream: true,
      },
      responsePrefix: "msg_",
    };
  }
  return {
    path: `/v1beta/models/gemini-2.5-pro:streamGenerateContent${shape === "gemini-sse" ? "?alt=sse" : ""}`,
    body: {
      contents: [{ role: "user", parts: [{ text: prompt }] }],
      generationConfig: { maxOutputTokens: maxTokens },
    },
    responsePrefix: "resp-",
  };
}

/**
 * A request id for which the fake provider answers at least `minOutput` tokens (it answers
 * 16 + (sha256(response id) mod 240) tokens, capped by the request's limit).
 */
function longAnswerId(shape: Shape, prefix: string, minOutput: number): string {
  const responsePrefix = request(shape, 1).responsePrefix;
  for (;;) {
    const id = `${prefix}-${randomUUID()}`;
    const want = 16 + (createHash("sha256").update(`${responsePrefix}${id}`).digest().readUInt32BE(0) % 240);
    if (want >= minOutput) return id;
  }
}

/** The provider's final output count, read from the stream the client received. */
function reportedOutput(shape: Shape, body: string): number {
  const field =
    shape === "openai"
      ? "completion_tokens"
      : shape === "anthropic"
        ? "output_tokens"
        : "candidatesTokenCount";
  const all = [...body.matchAll(new RegExp(`"${field}":(\\d+)`, "g"))];
  return Number(all.at(-1)?.[1]);
}

const providerOf = (shape: Shape) =>
  shape === "openai" ? "openai" : shape === "anthropic" ? "anthropic" : "google";

interface Sent {
  status: number;
  body: string;
  /** True when the client hung up on purpose. */
  aborted: boolean;
  /** x-latch-event-id: a stream names its event in its headers (a client that hangs up has it too). */
  eventId: string | undefined;
}

/** POSTs through the gateway; with `abortAfterBytes`, hangs up once that many bytes arrived. */
function send(
  tenant: string,
  requestId: string,
  path: string,
  body: unknown,
  abortAfterBytes?: number,
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(
      `${gateway.url}${path}`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          "x-latch-tenant": tenant,
          "x-request-id": requestId,
        },
      },
      (res) => {
        let text = "";
        let received = 0;
        const header = res.headers["x-latch-event-id"];
        const eventId = typeof header === "string" ? header : undefined;
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
          received += chunk.byteLength;
          if (abortAfterBytes !== undefined && received >= abortAfterBytes) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: text, aborted: true, eventId });
          }
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, aborted: false, eventId }));
        res.on("error", () => resolve({ status: res.statusCode ?? 0, body: text, aborted: true, eventId }));
      },
    );
    req.on("error", (error) => {
      if (abortAfterBytes !== undefined) return; // our own hang-up
      reject(error);
    });
    req.end(payload);
  });
}

/** Waits (generously: the machine may be loaded) until `probe` returns a value. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The record of the call `sent` (found by the event id its headers named, which the SSE last
 * line repeats), once its hold is settled. It carries the provider's response id for
 * `requestId` as an attribute: the call's own record, not another's.
 */
async function settledRecord(
  tenant: string,
  sent: Sent,
  provider: { responsePrefix: string; requestId: string; providerId: string },
): Promise<RatedUsageRecord> {
  expect(sent.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:[a-z]+$/);
  expect(sent.eventId?.endsWith(`:0:${provider.providerId}`), sent.eventId).toBe(true);
  const eventId = sent.eventId as string;
  const trailer = /^: latch event (\S+) (\S+)$/m.exec(sent.body);
  if (trailer !== null) expect(trailer[1]).toBe(eventId);
  const record = await eventually(async () => (await backends.rated.current(eventId)) ?? undefined, eventId);
  expect(record.observation.subject.tenantId).toBe(tenant);
  expect(record.observation.attributes).toEqual({
    provider_response_id: `${provider.responsePrefix}${provider.requestId}`,
  });
  await eventually(
    async () => ((await backends.quota.balance(tenant)).held === 0 ? true : undefined),
    "held = 0",
  );
  return record;
}

const SHAPES: Shape[] = ["openai", "anthropic", "gemini-sse", "gemini-array"];

describe("gateway streams", () => {
  it.each(SHAPES)(
    "%s: a slow stream that outlasts the provider timeout completes and is billed from its usage",
    { timeout: 120_000 },
    async (shape) => {
      const tenant = `slow-${shape}`;
      await backends.quota.setLimit(tenant, 10_000_000);
      const requestId = longAnswerId(shape, `slow-${shape}`, 200);
      faults.set(requestId, "slow");
      const r = request(shape, 256);
      // ≥ 200 output tokens = ≥ 25 text events (one per 8 tokens), one every 200 ms: ≥ 5 s
      // of streaming against a 2 s provider timeout.
      expect(25 * SLOW_EVENT_MS).toBeGreaterThan(2 * PROVIDER_TIMEOUT_MS);
      const sent = await send(tenant, requestId, r.path, r.body);
      expect(sent.status).toBe(200);
      if (shape !== "gemini-array") expect(sent.body).toContain(": latch event");
      const record = await settledRecord(tenant, sent, {
        responsePrefix: r.responsePrefix,
        requestId,
        providerId: providerOf(shape),
      });
      expect(record.observation.source.kind).toBe("stream_accumulated");
      expect(record.observation.outcome.kind).toBe("success");
      const output = reportedOutput(shape, sent.body);
      expect(output).toBeGreaterThanOrEqual(200);
      expect(record.observation.meters.output_tokens).toBe(output);
      const balance = await backends.quota.balance(tenant);
      expect(balance.held).toBe(0);
      expect(balance.spent).toBeGreaterThan(200);
    },
  );

  it.each(SHAPES)(
    "%s: a provider that drops the stream half-way leaves no hold open and the served text is billed",
    { timeout: 120_000 },
    async (shape) => {
      const tenant = `cut-${shape}`;
      await backends.quota.setLimit(tenant, 10_000_000);
      const requestId = longAnswerId(shape, `cut-${shape}`, 100);
      faults.set(requestId, "cut");
      const r = request(shape, 240);
      const sent = await send(tenant, requestId, r.path, r.body);
      expect(sent.status).toBe(200);
      const record = await settledRecord(tenant, sent, {
        responsePrefix: r.responsePrefix,
        requestId,
        providerId: providerOf(shape),
      });
      expect(record.observation.source.kind).toBe("estimated");
      expect(record.observation.outcome).toEqual({ kind: "error", code: "provider_stream_error" });
      // Every served word ("wordN ", 6–7 characters) is billed: at least chars / 4 tokens.
      const servedWords = sent.body.match(/word\d+ /g) ?? [];
      expect(servedWords.length).toBeGreaterThan(0);
      const servedChars = servedWords.reduce((n, w) => n + w.length, 0);
      expect(record.observation.meters.output_tokens).toBe(Math.ceil(servedChars / 4));
      expect(Number(record.total)).toBeGreaterThan(0);
      const balance = await backends.quota.balance(tenant);
      expect(balance.held).toBe(0);
      expect(balance.spent).toBeGreaterThan(0);
    },
  );

  it.each(SHAPES)(
    "%s: a client that hangs up mid-stream leaves no hold open and what it was served is billed",
    { timeout: 120_000 },
    async (shape) => {
      const tenant = `gone-${shape}`;
      await backends.quota.setLimit(tenant, 10_000_000);
      const requestId = longAnswerId(shape, `gone-${shape}`, 200);
      faults.set(requestId, "slow");
      const r = request(shape, 240);
      const sent = await send(tenant, requestId, r.path, r.body, 600);
      expect(sent.aborted).toBe(true);
      const record = await settledRecord(tenant, sent, {
        responsePrefix: r.responsePrefix,
        requestId,
        providerId: providerOf(shape),
      });
      expect(record.observation.source.kind).toBe("estimated");
      expect(record.observation.outcome).toEqual({ kind: "error", code: "client_aborted" });
      // Billed at least what reached the client before it hung up (the gateway may have
      // relayed a little more before it noticed).
      const servedChars = (sent.body.match(/word\d+ /g) ?? []).reduce((n, w) => n + w.length, 0);
      expect(record.observation.meters.output_tokens ?? 0).toBeGreaterThanOrEqual(Math.ceil(servedChars / 4));
      // The provider stopped: far fewer than the 240 tokens a full answer has.
      expect(record.observation.meters.output_tokens ?? 0).toBeLessThan(240);
      expect((await backends.quota.balance(tenant)).held).toBe(0);
    },
  );

  it("gemini without alt=sse (a JSON array) is relayed as sent and billed from its usage", async () => {
    const tenant = "gemini-array";
    await backends.quota.setLimit(tenant, 10_000_000);
    const requestId = `array-${randomUUID()}`;
    const r = request("gemini-array", 256);
    const sent = await send(tenant, requestId, r.path, r.body);
    expect(sent.status).toBe(200);
    const chunks = JSON.parse(sent.body) as Array<{ usageMetadata?: { candidatesTokenCount: number } }>;
    const output = chunks.at(-1)?.usageMetadata?.candidatesTokenCount;
    expect(output).toBeGreaterThan(0);
    const record = await settledRecord(tenant, sent, {
      responsePrefix: "resp-",
      requestId,
      providerId: "google",
    });
    expect(record.observation.source.kind).toBe("stream_accumulated");
    expect(record.observation.meters.output_tokens).toBe(output);
  });
});
