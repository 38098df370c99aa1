/**
 * A small LLM gateway in front of a model provider, metered and billed by Latch. Per request:
 *
 *   reserve quota (fails closed) → call the provider → record the usage (fails open) → settle
 *
 * It speaks the providers' own APIs, streaming (SSE) and not:
 *   POST /v1/chat/completions                           OpenAI Chat Completions
 *   POST /v1/messages                                   Anthropic Messages
 *   POST /v1beta/models/{model}:generateContent         Gemini (and :streamGenerateContent)
 *
 * The caller's tenant comes from the `x-latch-tenant` header (put your API-key middleware
 * there; `@latch/http` has one). The gateway knows nothing about where Latch keeps its state:
 * the `Latch` it is given decides (see config.ts).
 */
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createStreamAccumulator, type Hold, type Latch, type RecordResult } from "@latch/core";

export interface GatewayOptions {
  /** Omitted: a plain proxy with no metering (the benchmark's baseline). */
  latch?: Latch;
  /** Base URL of the provider (or of the fake one). */
  providerUrl: string;
  /** Upper bound on one provider call. Default 30,000 ms. */
  providerTimeoutMs?: number;
  /** Output tokens reserved when the request sets no limit. Default 1,024. */
  defaultMaxTokens?: number;
}

export interface Gateway {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

interface Route {
  api: "openaiChat" | "anthropic" | "gemini";
  providerId: string;
  model: string;
  stream: boolean;
  maxTokens: unknown;
  messages: unknown[];
}

/** What the request asks for, from its path and body; undefined when the path is unknown. */
function route(path: string, body: Record<string, unknown>): Route | undefined {
  if (path === "/v1/chat/completions") {
    return {
      api: "openaiChat",
      providerId: "openai",
      model: String(body.model ?? ""),
      stream: body.stream === true,
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      messages: Array.isArray(body.messages) ? body.messages : [],
    };
  }
  if (path === "/v1/messages") {
    const system = typeof body.system === "string" ? [{ content: body.system }] : [];
    return {
      api: "anthropic",
      providerId: "anthropic",
      model: String(body.model ?? ""),
      stream: body.stream === true,
      maxTokens: body.max_tokens,
      messages: [...system, ...(Array.isArray(body.messages) ? body.messages : [])],
    };
  }
  const g = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
  if (g) {
    const config = (body.generationConfig ?? {}) as { maxOutputTokens?: unknown };
    return {
      api: "gemini",
      providerId: "google",
      model: decodeURIComponent(g[1] as string),
      stream: g[2] === "streamGenerateContent",
      maxTokens: config.maxOutputTokens,
      messages: (Array.isArray(body.contents) ? body.contents : []).map((c) => ({
        content: (c as { parts?: unknown }).parts,
      })),
    };
  }
  return undefined;
}

function textLength(value: unknown): number {
  if (typeof value === "string") return value.length;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + textLength(v), 0);
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    return textLength(v.text ?? v.content ?? v.parts ?? "");
  }
  return 0;
}

/**
 * Quota units to hold: a conservative estimate of the prompt's tokens (⌈characters / 3⌉ + 4 per
 * message; tokenizers average about four characters per token of English text) plus the
 * output limit. The settle commits what the provider reports and frees the rest; a call that
 * used more than it held is still charged in full (see the quota contract).
 */
export function reserveEstimate(messages: readonly unknown[], maxTokens: number): number {
  let prompt = 0;
  for (const m of messages) prompt += Math.ceil(textLength((m as { content?: unknown }).content) / 3) + 4;
  return prompt + maxTokens;
}

function problem(res: http.ServerResponse, status: number, title: string, detail: string): void {
  const body = JSON.stringify({ type: "about:blank", title, status, detail });
  res.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function responseIdOf(api: Route["api"], body: Record<string, unknown>): string | undefined {
  const id = api === "gemini" ? body.responseId : body.id;
  return typeof id === "string" ? id : undefined;
}

/** Starts the gateway on a loopback port (`port` 0 picks a free one). */
export async function startGateway(options: GatewayOptions, port = 0): Promise<Gateway> {
  const { latch } = options;
  const timeoutMs = options.providerTimeoutMs ?? 30_000;
  const defaultMaxTokens = options.defaultMaxTokens ?? 1_024;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    if (req.method !== "POST") return problem(res, 405, "Method Not Allowed", "only POST is served");
    const tenant = req.headers["x-latch-tenant"];
    if (typeof tenant !== "string" || tenant === "") {
      return problem(res, 401, "Unauthorized", "x-latch-tenant header missing");
    }
    const headerId = req.headers["x-request-id"];
    const requestId = typeof headerId === "string" && headerId !== "" ? headerId : randomUUID();
    let body: Record<string, unknown>;
    const raw = await readBody(req);
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return problem(res, 400, "Bad Request", "the body is not JSON");
    }
    const r = route(url.pathname, body);
    if (r === undefined) return problem(res, 404, "Not Found", `no route ${url.pathname}`);
    if (r.model === "") return problem(res, 400, "Bad Request", "model is missing");
    const maxTokens =
      typeof r.maxTokens === "number" && Number.isSafeInteger(r.maxTokens) && r.maxTokens > 0
        ? r.maxTokens
        : defaultMaxTokens;
    // OpenAI streams report usage only when asked: always ask.
    if (r.api === "openaiChat" && r.stream) body.stream_options = { include_usage: true };
    if (r.api === "openaiChat" && body.max_tokens === undefined && body.max_completion_tokens === undefined) {
      body.max_completion_tokens = maxTokens;
    }

    // 1. Reserve before the call. Fails closed: a quota store that cannot answer denies.
    const hold: Hold | undefined = await latch?.reserve({
      account: tenant,
      amount: reserveEstimate(r.messages, maxTokens),
      holdId: `${requestId}:hold`,
    });
    if (hold !== undefined && !hold.granted) {
      return hold.reason === "insufficient"
        ? problem(res, 429, "Quota Exceeded", hold.message)
        : problem(res, 503, "Quota Unavailable", hold.message);
    }

    // 2. Call the provider.
    const startedAt = new Date().toISOString();
    let upstream: Response;
    try {
      upstream = await fetch(`${options.providerUrl}${url.pathname}${url.search}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": requestId },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      if (hold !== undefined) await latch?.settle(hold, { status: "failed" });
      const timedOut = (error as { name?: string }).name === "TimeoutError";
      return timedOut
        ? problem(res, 504, "Gateway Timeout", `the provider did not answer within ${timeoutMs} ms`)
        : problem(res, 502, "Bad Gateway", "the provider could not be reached");
    }
    if (!upstream.ok) {
      await upstream.body?.cancel();
      if (hold !== undefined) await latch?.settle(hold, { status: "failed" });
      return problem(res, 502, "Bad Gateway", `the provider answered ${upstream.status}`);
    }

    // 3. Relay the answer, and find the usage in it.
    let usage: unknown;
    let responseId: string | undefined;
    let payload: Buffer | undefined;
    if (r.stream) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      // Relayed as is; the accumulator reads the usage the way each API reports it (@latch/core).
      const stream = createStreamAccumulator(r.api);
      for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) {
        res.write(chunk);
        stream.write(chunk);
      }
      stream.end();
      const { usage: streamed, response } = stream.result();
      usage = streamed;
      responseId = responseIdOf(r.api, response);
    } else {
      payload = Buffer.from(await upstream.arrayBuffer());
      const parsed = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
      usage = r.api === "gemini" ? parsed.usageMetadata : parsed.usage;
      responseId = responseIdOf(r.api, parsed);
    }
    const completedAt = new Date().toISOString();

    // 4. Record (fails open: stored raw first, spooled locally if the store is down), settle.
    const eventId = `${responseId ?? requestId}:0:${r.providerId}`;
    let result: RecordResult | { status: "failed" } | { status: "unmetered" } = latch
      ? { status: "failed" }
      : { status: "unmetered" };
    if (latch !== undefined && usage !== undefined) {
      result = await latch.record({
        api: r.api,
        usage,
        observation: {
          eventId,
          subject: { tenantId: tenant },
          model: { billableModel: r.model },
          provider: { providerId: r.providerId },
          source: { kind: r.stream ? "stream_accumulated" : "provider_reported" },
          outcome: { kind: "success" },
          timing: { startedAt, completedAt },
        },
      });
    }
    if (latch !== undefined && hold !== undefined) {
      await latch.settle(
        hold,
        result.status === "unmetered"
          ? { status: "failed" }
          : (result as RecordResult | { status: "failed" }),
      );
    }

    if (payload !== undefined) {
      const headers: http.OutgoingHttpHeaders = {
        "content-type": "application/json",
        "content-length": payload.byteLength,
        "x-latch-event-id": eventId,
        "x-latch-status": result.status,
      };
      if (result.status === "rated")
        headers["x-latch-cost"] = `${result.record.total} ${result.record.currency}`;
      res.writeHead(200, headers);
      res.end(payload);
    } else {
      // Streamed: the metering outcome goes in a last comment line (headers are long gone).
      res.end(`: latch event ${eventId} ${result.status}\n\n`);
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) problem(res, 500, "Internal Server Error", String(error));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    server,
    async close() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
