/**
 * A local, deterministic fake model provider: answers OpenAI Chat Completions, Anthropic
 * Messages and Gemini generateContent requests, streaming (SSE) and not, with usage — the
 * same payload shapes the real APIs document. Everything derives from the request, so the
 * same request always gets the same answer and the same usage:
 *
 * - prompt tokens = ceil(prompt characters / 4) + 3 per message; a prompt longer than 400
 *   characters reads its first 256 tokens from the provider's cache (cached / cache-read);
 * - output tokens = 16 + (hash of the request id mod 240), never above the request's
 *   `max_tokens` (`maxOutputTokens` for Gemini);
 * - the response id is derived from the `x-request-id` header (or the body's hash); the output
 *   count is drawn from that derived id even when `responseId` makes the provider report
 *   another one (a provider that reuses its ids still answers each request its own usage).
 *
 * Faults for tests: `fault: (requestId) => ProviderFault` makes a request answer 500
 * (`error`), never answer (`timeout`: the caller's timeout fires), stream slowly (`slow`: one
 * event every `slowEventMs`, so a long answer outlasts any whole-call timeout while it is still
 * sending) or stop mid-stream (`cut`: half the events, then the connection is destroyed).
 *
 * Latency: `firstByteDelayMs` holds every answer (its status line and headers, streamed or not,
 * errors included) that long after the request arrived, as a real model takes time before its
 * first token (hundreds of ms); default 0, answered at once. `firstByteJitterMs` adds to each
 * answer's delay a uniform draw from 0 to it (real models' latency varies from call to call;
 * with one constant delay, clients that send their next request as soon as one is answered stay
 * in step and reach the gateway in bursts). `setFirstByteDelay(ms, jitterMs)` changes both
 * while the provider runs (the benchmark's delayed rounds). Their sum must not pass 2^31 - 1 ms,
 * the longest Node timer.
 *
 * Gemini's `:streamGenerateContent` answers Server-Sent Events only with `?alt=sse`; without
 * it, as the real API does, it streams one JSON array of the same chunks.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export type ProviderFault = "error" | "timeout" | "slow" | "cut" | undefined;

export interface FakeProviderOptions {
  fault?: (requestId: string) => ProviderFault;
  /** Pause between two streamed events of a `slow` request. Default 100 ms. */
  slowEventMs?: number;
  /** Time from a request's arrival to the first byte of its answer, ms. Default 0. */
  firstByteDelayMs?: number;
  /** Up to this much more, ms, drawn uniformly for each answer. Default 0. */
  firstByteJitterMs?: number;
  /**
   * The response id to report for a request (OpenAI's and Anthropic's `id`, Gemini's
   * `responseId`), given its request id and its default response id: e.g. `() => "chatcmpl-same"`
   * for a provider that reuses one id for every answer (any JSON value; `undefined` or `null`:
   * the derived id). Default: the derived id.
   */
  responseId?: (requestId: string, derived: string) => unknown;
}

/** How a response is streamed: all at once, slowly, or cut off half-way. */
interface Delivery {
  mode: "normal" | "slow" | "cut";
  slowEventMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes `pieces` per the delivery: a `cut` delivery writes half of them, then destroys the socket. */
async function deliver(
  res: http.ServerResponse,
  pieces: readonly string[],
  delivery: Delivery,
): Promise<void> {
  const count = delivery.mode === "cut" ? Math.max(1, Math.floor(pieces.length / 2)) : pieces.length;
  for (let i = 0; i < count; i++) {
    if (res.destroyed) return;
    // Wait until each piece is handed to the socket, so a cut happens after what was sent.
    await new Promise<void>((resolve) => res.write(pieces[i] as string, () => resolve()));
    if (delivery.mode === "slow" && i < count - 1) await sleep(delivery.slowEventMs);
  }
  if (delivery.mode === "cut") {
    await sleep(20);
    res.destroy();
  } else res.end();
}

export interface FakeProvider {
  url: string;
  /** Requests answered so far, by outcome. */
  readonly counts: { ok: number; error: number; timeout: number };
  /**
   * The first-byte delay (and its jitter, default 0) of the requests arriving from now on (see
   * `firstByteDelayMs`, `firstByteJitterMs`).
   */
  setFirstByteDelay(ms: number, jitterMs?: number): void;
  close(): Promise<void>;
}

interface Message {
  role?: string;
  content?: unknown;
}

function hash(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0);
}

/** Every string in a content value (OpenAI/Anthropic content parts, Gemini parts). */
function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(textOf).join("");
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    return textOf(v.text ?? v.content ?? v.parts ?? "");
  }
  return "";
}

export function promptTokensOf(messages: readonly Message[]): number {
  let tokens = 0;
  for (const m of messages) tokens += Math.ceil(textOf(m.content).length / 4) + 3;
  return tokens;
}

function outputTokens(requestId: string, maxTokens: unknown): number {
  const want = 16 + (hash(requestId) % 240);
  return typeof maxTokens === "number" && Number.isSafeInteger(maxTokens) && maxTokens > 0
    ? Math.min(want, maxTokens)
    : want;
}

function cachedTokens(prompt: number, chars: number): number {
  return chars > 400 ? Math.min(256, prompt) : 0;
}

function sse(
  res: http.ServerResponse,
  events: Array<{ event?: string; data: unknown }>,
  delivery: Delivery,
): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const pieces = events.map(
    (e) =>
      `${e.event ? `event: ${e.event}\n` : ""}data: ${typeof e.data === "string" ? e.data : JSON.stringify(e.data)}\n\n`,
  );
  return deliver(res, pieces, delivery);
}

/** Gemini's streaming without `alt=sse`: one JSON array, written chunk by chunk. */
function jsonArrayStream(
  res: http.ServerResponse,
  chunks: readonly unknown[],
  delivery: Delivery,
): Promise<void> {
  res.writeHead(200, { "content-type": "application/json" });
  const pieces = chunks.map(
    (c, i) => `${i === 0 ? "[" : ",\r\n"}${JSON.stringify(c)}${i === chunks.length - 1 ? "]" : ""}`,
  );
  return deliver(res, pieces, delivery);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function words(n: number): string[] {
  return Array.from({ length: Math.max(1, Math.ceil(n / 8)) }, (_, i) => `word${i} `);
}

function openai(
  res: http.ServerResponse,
  seed: string,
  body: Record<string, unknown>,
  delivery: Delivery,
  id: unknown = seed,
): void {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Message[];
  const chars = messages.reduce((n, m) => n + textOf(m.content).length, 0);
  const prompt = promptTokensOf(messages);
  const completion = outputTokens(seed, body.max_tokens ?? body.max_completion_tokens);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cachedTokens(prompt, chars) },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
  const model = String(body.model ?? "gpt-4o");
  const created = 1_770_000_000;
  if (body.stream === true) {
    const includeUsage =
      (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const chunks = words(completion).map((w) => ({
      data: {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [{ index: 0, delta: { content: w } }],
      },
    }));
    chunks.push({
      data: {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
      },
    } as never);
    if (includeUsage) {
      chunks.push({
        data: { id, object: "chat.completion.chunk", created, model, choices: [], usage },
      } as never);
    }
    void sse(res, [...chunks, { data: "[DONE]" }], delivery);
    return;
  }
  json(res, 200, {
    id,
    object: "chat.completion",
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: words(completion).join("") },
        finish_reason: "stop",
      },
    ],
    usage,
  });
}

function anthropic(
  res: http.ServerResponse,
  seed: string,
  body: Record<string, unknown>,
  delivery: Delivery,
  id: unknown = seed,
): void {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Message[];
  const system = typeof body.system === "string" ? [{ content: body.system }] : [];
  const all = [...system, ...messages];
  const chars = all.reduce((n, m) => n + textOf(m.content).length, 0);
  const prompt = promptTokensOf(all);
  const cached = cachedTokens(prompt, chars);
  const output = outputTokens(seed, body.max_tokens);
  // Anthropic's input_tokens excludes cache reads and writes.
  const usage = {
    input_tokens: prompt - cached,
    cache_read_input_tokens: cached,
    cache_creation_input_tokens: 0,
    output_tokens: output,
  };
  const model = String(body.model ?? "claude-sonnet-4-5");
  if (body.stream === true) {
    void sse(
      res,
      [
        {
          event: "message_start",
          data: {
            type: "message_start",
            message: {
              id,
              type: "message",
              role: "assistant",
              model,
              content: [],
              usage: { ...usage, output_tokens: 1 },
            },
          },
        },
        {
          event: "content_block_start",
          data: { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
        },
        ...words(output).map((w) => ({
          event: "content_block_delta",
          data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: w } },
        })),
        { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
        {
          event: "message_delta",
          data: {
            type: "message_delta",
            delta: { stop_reason: "end_turn" },
            usage: { output_tokens: output },
          },
        },
        { event: "message_stop", data: { type: "message_stop" } },
      ],
      delivery,
    );
    return;
  }
  json(res, 200, {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: words(output).join("") }],
    stop_reason: "end_turn",
    usage,
  });
}

function gemini(
  res: http.ServerResponse,
  seed: string,
  body: Record<string, unknown>,
  stream: "sse" | "array" | false,
  delivery: Delivery,
  id: unknown = seed,
): void {
  const contents = (Array.isArray(body.contents) ? body.contents : []) as Array<{ parts?: unknown }>;
  const messages = contents.map((c) => ({ content: c.parts }));
  const chars = messages.reduce((n, m) => n + textOf(m.content).length, 0);
  const prompt = promptTokensOf(messages);
  const cached = cachedTokens(prompt, chars);
  const config = (body.generationConfig ?? {}) as { maxOutputTokens?: unknown };
  const output = outputTokens(seed, config.maxOutputTokens);
  // Gemini's promptTokenCount includes cachedContentTokenCount.
  const usageMetadata = {
    promptTokenCount: prompt,
    cachedContentTokenCount: cached,
    candidatesTokenCount: output,
    totalTokenCount: prompt + output,
  };
  const candidate = (text: string) => ({ content: { role: "model", parts: [{ text }] }, index: 0 });
  if (stream) {
    const parts = words(output);
    const chunks = parts.map((w, i) => ({
      responseId: id,
      candidates: [candidate(w)],
      ...(i === parts.length - 1 ? { usageMetadata } : {}),
    }));
    if (stream === "sse")
      void sse(
        res,
        chunks.map((data) => ({ data })),
        delivery,
      );
    else void jsonArrayStream(res, chunks, delivery);
    return;
  }
  json(res, 200, { responseId: id, candidates: [candidate(words(output).join(""))], usageMetadata });
}

function delayOf(ms: number, name = "firstByteDelayMs"): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be ≥ 0, got ${ms}`);
  return ms;
}

/** Node's timers hold at most 2^31 - 1 ms; a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/** The first-byte delay and its jitter, checked together: their sum is the longest wait. */
function delaysOf(ms: number, jitterMs: number): { delay: number; jitter: number } {
  const delay = delayOf(ms);
  const jitter = delayOf(jitterMs, "firstByteJitterMs");
  if (delay + jitter > MAX_TIMER_MS)
    throw new RangeError(
      `firstByteDelayMs + firstByteJitterMs must be ≤ ${MAX_TIMER_MS} (the longest Node timer), got ${delay} + ${jitter}`,
    );
  return { delay, jitter };
}

export async function startFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const counts = { ok: 0, error: 0, timeout: 0 };
  const hanging = new Set<http.ServerResponse>();
  const initial = delaysOf(options.firstByteDelayMs ?? 0, options.firstByteJitterMs ?? 0);
  let firstByteDelayMs = initial.delay;
  let firstByteJitterMs = initial.jitter;
  /** Answers waiting out their first-byte delay (cleared on close). */
  const delayed = new Set<ReturnType<typeof setTimeout>>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const wait = firstByteDelayMs + (firstByteJitterMs === 0 ? 0 : Math.random() * firstByteJitterMs);
      if (wait === 0) return answer();
      const timer = setTimeout(() => {
        delayed.delete(timer);
        if (!res.destroyed) answer();
      }, wait);
      delayed.add(timer);
    });
    function answer() {
      const raw = Buffer.concat(chunks).toString("utf8");
      const header = req.headers["x-request-id"];
      const requestId = typeof header === "string" && header !== "" ? header : `h${hash(raw).toString(16)}`;
      const fault = options.fault?.(requestId);
      const delivery: Delivery = {
        mode: fault === "slow" || fault === "cut" ? fault : "normal",
        slowEventMs: options.slowEventMs ?? 100,
      };
      if (fault === "timeout") {
        counts.timeout++;
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return; // never answers
      }
      if (fault === "error") {
        counts.error++;
        json(res, 500, { error: { type: "server_error", message: "the fake provider failed this request" } });
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        json(res, 400, { error: { type: "invalid_request_error", message: "body is not JSON" } });
        return;
      }
      const url = new URL(req.url ?? "/", "http://fake");
      counts.ok++;
      const reported = (derived: string) => options.responseId?.(requestId, derived) ?? derived;
      if (url.pathname === "/v1/chat/completions") {
        const seed = `chatcmpl-${requestId}`;
        return openai(res, seed, body, delivery, reported(seed));
      }
      if (url.pathname === "/v1/messages") {
        const seed = `msg_${requestId}`;
        return anthropic(res, seed, body, delivery, reported(seed));
      }
      const g = /^\/v1beta\/models\/[^/:]+:(generateContent|streamGenerateContent)$/.exec(url.pathname);
      if (g) {
        const stream =
          g[1] === "streamGenerateContent"
            ? url.searchParams.get("alt") === "sse"
              ? "sse"
              : "array"
            : false;
        const seed = `resp-${requestId}`;
        return gemini(res, seed, body, stream, delivery, reported(seed));
      }
      counts.ok--;
      json(res, 404, { error: { type: "not_found", message: `no route ${url.pathname}` } });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    setFirstByteDelay(ms, jitterMs = 0) {
      const { delay, jitter } = delaysOf(ms, jitterMs);
      firstByteDelayMs = delay;
      firstByteJitterMs = jitter;
    },
    async close() {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
