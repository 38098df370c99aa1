/**
 * A provider's bytes are not trusted: a streamed answer whose line (SSE) or array element
 * (Gemini without `alt=sse`) never ends must not make the gateway hold it all in memory. The
 * client still gets every byte; the call is still billed (estimated when no usage could be read).
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type Gateway, startGateway } from "../src/gateway.js";

const MIB = 1024 * 1024;
/** Bytes of the endless line or element. */
const HOSTILE_BYTES = 96 * MIB;

let dir: string;
let backends: GatewayBackends;
let latch: Latch;
let provider: http.Server;
let gateway: Gateway;

/** Streams `head`, then HOSTILE_BYTES of `filler` with no newline and no closing brace, then ends. */
function hostileProvider(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on("end", async () => {
      const gemini = (req.url ?? "").includes("streamGenerateContent");
      res.writeHead(200, { "content-type": gemini ? "application/json" : "text/event-stream" });
      res.write(
        gemini ? '[{"candidates":[{"content":{"parts":[{"text":"' : 'data: {"choices":[{"delta":{"content":"',
      );
      const chunk = Buffer.alloc(64 * 1024, gemini ? "[" : "x");
      for (let sent = 0; sent < HOSTILE_BYTES; sent += chunk.length) {
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
      }
      res.end();
    });
  });
}

/** Starts `server` on a port of its own: its URL. */
async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A gateway of the test's own on the latch, in front of a provider answering with `answer`; both closed after the test. */
async function gatewayInFrontOf(answer: http.RequestListener): Promise<Gateway> {
  const odd = http.createServer(answer);
  const providerUrl = await listen(odd);
  onTestFinished(() => new Promise<void>((resolve) => odd.close(() => resolve())));
  const own = await startGateway({ latch, providerUrl });
  // onTestFinished hooks run in reverse: the gateway closes first, then its provider.
  onTestFinished(() => own.close());
  return own;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-hostile-"));
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "hostile" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  provider = hostileProvider();
  gateway = await startGateway({ latch, providerUrl: await listen(provider) });
  await latch.ready();
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => provider?.close(resolve));
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends a streamed request and reads (and drops) the answer while sampling the heap. */
async function streamThrough(path: string, body: unknown, tenant: string) {
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 20);
  let received = 0;
  try {
    const response = await fetch(`${gateway.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-latch-tenant": tenant },
      body: JSON.stringify(body),
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    return { status: response.status, received, growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

describe("a hostile provider's endless line", () => {
  it.each([
    [
      "SSE",
      "/v1/chat/completions",
      { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true },
    ],
    [
      "a Gemini JSON array",
      "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
      { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
    ],
  ])(
    "%s: relayed in full, the heap grows by far less than the line, and the call is billed",
    { timeout: 120_000 },
    async (_, path, body) => {
      const tenant = `hostile-${path.length}`;
      await backends.quota.setLimit(tenant, 10_000_000);
      const sent = await streamThrough(path, body, tenant);
      expect(sent.status).toBe(200);
      expect(sent.received).toBeGreaterThan(HOSTILE_BYTES);
      expect(sent.growth).toBeLessThan(HOSTILE_BYTES / 3);
      await gateway.settled(); // the hold is settled after the response
      const balance = await backends.quota.balance(tenant);
      expect(balance.held).toBe(0);
      expect(balance.spent).toBeGreaterThan(0);
    },
  );
});

it("a response id that is no valid header value: the answer is still delivered, as it is billed", async () => {
  // A non-streamed answer whose id (sent back in x-latch-provider-response-id) holds a character
  // outside Latin-1: Node refuses it in a header.
  const own = await gatewayInFrontOf((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-\u20ac-1",
          object: "chat.completion",
          model: "gpt-4o",
          choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
    });
  });
  const tenant = "odd-id";
  await backends.quota.setLimit(tenant, 1_000_000);
  const response = await fetch(`${own.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 16 }),
  });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(JSON.parse(text).choices[0].message.content).toBe("hello");
  expect(response.headers.get("x-latch-status")).toBe("rated");
  expect(response.headers.get("x-latch-provider-response-id")).toBe("chatcmpl-%E2%82%AC-1");
  // Billed under the gateway's event id, the provider's id kept as it sent it.
  const eventId = response.headers.get("x-latch-event-id") as string;
  expect(eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
  const record = await backends.rated.current(eventId);
  expect(record?.observation.meters.output_tokens).toBe(5);
  expect(record?.observation.attributes).toEqual({ provider_response_id: "chatcmpl-\u20ac-1" });
  await own.settled();
  expect(await backends.quota.balance(tenant)).toMatchObject({ held: 0, spent: 15 });
});

it("a streamed response id holding line breaks cannot inject an event into the caller's stream", async () => {
  // The gateway's last SSE line is a comment naming the event id: were it (or held it) the
  // provider's id, "\n\ndata: …" in it would end the comment and add an event. The id is kept,
  // as sent, in the record's attributes only.
  const injected = 'chatcmpl-x\n\ndata: {"injected":true}\n\n';
  const chunk = (body: Record<string, unknown>) => `data: ${JSON.stringify(body)}\n\n`;
  const own = await gatewayInFrontOf((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(
        chunk({
          id: injected,
          object: "chat.completion.chunk",
          model: "gpt-4o",
          choices: [{ index: 0, delta: { role: "assistant", content: "hello" }, finish_reason: null }],
        }),
      );
      res.write(
        chunk({
          id: injected,
          object: "chat.completion.chunk",
          model: "gpt-4o",
          choices: [],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
      res.end("data: [DONE]\n\n");
    });
  });
  const tenant = "odd-stream-id";
  await backends.quota.setLimit(tenant, 1_000_000);
  const response = await fetch(`${own.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant },
    body: JSON.stringify({
      model: "gpt-4o",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
    }),
  });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  // Every data line the caller sees is one the provider sent; the comment stays one line.
  const dataLines = text.split("\n").filter((line) => line.startsWith("data:"));
  expect(dataLines).toHaveLength(3);
  expect(text.split("\n")).not.toContain('data: {"injected":true}');
  const comment = text.split("\n").find((line) => line.startsWith(": latch event "));
  const eventId = response.headers.get("x-latch-event-id") as string;
  expect(eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
  expect(comment).toBe(`: latch event ${eventId} rated`);
  expect(response.headers.get("x-latch-provider-response-id")).toBeNull(); // headers left before the id arrived
  expect((await backends.rated.current(eventId))?.observation.attributes).toEqual({
    provider_response_id: injected,
  });
  await own.settled();
  expect(await backends.quota.balance(tenant)).toMatchObject({ held: 0, spent: 15 });
});

it("a response id that can be no attribute (U+0000, a lone surrogate, 600 characters, 10 KB, a number, empty): the call is billed, the id left out", async () => {
  // Found by an adversarial review when the event id was made of the provider's id: record()
  // refused it (invalid_input), the estimated fallback too: the caller got a 500 (or, streamed,
  // the whole answer) and the call, paid to the provider, was billed to nobody. Such an id must
  // not make record() refuse the attribute either: it is left out, never truncated.
  // Also 10 KB (kept out of the headers too: past a client's header limit the answer would not
  // arrive), a JSON number, an empty string.
  const ids: unknown[] = [
    "chatcmpl-\u0000-1",
    "chatcmpl-\ud800-2",
    `chatcmpl-${"x".repeat(600)}`,
    `chatcmpl-${"y".repeat(10_240)}`,
    42,
    "",
  ];
  let next = 0;
  const chunk = (body: Record<string, unknown>) => `data: ${JSON.stringify(body)}\n\n`;
  const own = await gatewayInFrontOf((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => {
      body += d;
    });
    req.on("end", () => {
      const id = ids[next++ % ids.length];
      const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
      if ((JSON.parse(body) as { stream?: boolean }).stream) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(
          chunk({
            id,
            object: "chat.completion.chunk",
            model: "gpt-4o",
            choices: [{ index: 0, delta: { role: "assistant", content: "hello" }, finish_reason: null }],
          }),
        );
        res.write(chunk({ id, object: "chat.completion.chunk", model: "gpt-4o", choices: [], usage }));
        res.end("data: [DONE]\n\n");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          object: "chat.completion",
          model: "gpt-4o",
          choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }],
          usage,
        }),
      );
    });
  });
  const tenant = "unusable-id";
  await backends.quota.setLimit(tenant, 1_000_000);
  const eventIds: string[] = [];
  for (const stream of [...ids.map(() => false), ...ids.map(() => true)]) {
    const response = await fetch(`${own.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-latch-tenant": tenant },
      body: JSON.stringify({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 16,
        ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      }),
    });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const status = stream
      ? /^: latch event (\S+) (\S+)$/m.exec(text)?.slice(1)
      : [response.headers.get("x-latch-event-id"), response.headers.get("x-latch-status")];
    expect(status?.[1], text).toBe("rated");
    expect(status?.[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
    expect(status?.[0]).toBe(response.headers.get("x-latch-event-id"));
    expect(response.headers.get("x-latch-provider-response-id")).toBeNull();
    eventIds.push(status?.[0] as string);
  }
  expect(new Set(eventIds).size).toBe(2 * ids.length);
  for (const eventId of eventIds) {
    const record = await backends.rated.current(eventId);
    expect(record?.observation.meters.output_tokens).toBe(5);
    expect(record?.observation.attributes).toBeUndefined();
  }
  await own.settled();
  expect(await backends.quota.balance(tenant)).toMatchObject({ held: 0, spent: 2 * ids.length * 15 });
});
