/**
 * A small LLM gateway in front of a model provider, metered and billed by Latch. Per request:
 *
 *   reserve quota (fails closed) → call the provider → record the usage (fails open) → respond → settle
 *
 * The settle (commit or void the hold) changes nothing in the response (its status and cost come
 * from record()), so it runs after the response is handed to the socket: the caller never waits
 * for it. Every hold is still settled exactly once, on every path; `settled()` and `close()` wait
 * for the settles in flight.
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
import {
  type Hold,
  type Latch,
  type ProviderUsageInput,
  type RecordResult,
  type UsageApi,
  UsageEventId,
} from "@latch/core";
import { AttributesSchema } from "@latch/core/adapter";
import { estimatedUsage, type RelayOutcome, relayStream, usageFromStream } from "./stream-relay.js";

export interface GatewayOptions {
  /** Omitted: a plain proxy with no metering (the benchmark's baseline). */
  latch?: Latch;
  /** Base URL of the provider (or of the fake one). */
  providerUrl: string;
  /**
   * Upper bound on the provider's time to answer (its response headers). Default 30,000 ms.
   * It does not bound a stream that keeps sending: see `providerIdleTimeoutMs`.
   */
  providerTimeoutMs?: number;
  /** Longest silence allowed inside the provider's answer. Default `providerTimeoutMs`. */
  providerIdleTimeoutMs?: number;
  /** Output tokens reserved when the request sets no limit. Default 1,024. */
  defaultMaxTokens?: number;
  /**
   * Called once per request answered 200, just after its response was handed to the socket,
   * with where its time went (the benchmark prints these). It runs on the request's path: keep
   * it cheap. An error it throws is logged, never the request's.
   */
  onTimings?: (timings: RequestTimings) => void;
}

/** Where one request's time went in the gateway, ms (`performance.now()` differences). */
export interface RequestTimings {
  /** `latch.reserve()` (0 without Latch). */
  reserveMs: number;
  /** From sending the provider the request to its whole answer read (or relayed, streaming). */
  providerMs: number;
  /** `latch.record()` (both calls when the usage had to be estimated; 0 without Latch). */
  recordMs: number;
  /** From the request's arrival to its response handed to the socket; the rest is the gateway's own work and waiting for the event loop. */
  totalMs: number;
}

export interface Gateway {
  url: string;
  server: http.Server;
  /**
   * Resolves once the holds of every request received so far are settled (a hold is settled just
   * after its response is sent, so a caller that has read a response and then reads the quota
   * balance awaits this first). Requests still being handled are waited for too: a client that
   * hung up has seen its response end before the gateway notices, records and settles. Requests
   * and settles that start after the call are not waited for.
   */
  settled(): Promise<void>;
  /** Stops accepting requests, waits for those in flight and for their settles. */
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
  return promptEstimate(messages) + maxTokens;
}

/** The prompt part of {@link reserveEstimate}: ⌈characters / 3⌉ + 4 per message. */
export function promptEstimate(messages: readonly unknown[]): number {
  let prompt = 0;
  for (const m of messages) prompt += Math.ceil(textLength((m as { content?: unknown }).content) / 3) + 4;
  return prompt;
}

function problem(res: http.ServerResponse, status: number, title: string, detail: string): void {
  const body = JSON.stringify({ type: "about:blank", title, status, detail });
  res.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * `value` as a header value: characters outside printable ASCII percent-encoded (UTF-8). The
 * provider's response id is not trusted: a character Node refuses in a header would make
 * writeHead throw after the call was billed, and the caller would get a 500 instead of the
 * answer it pays for.
 */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/gu, (c) =>
    Array.from(Buffer.from(c, "utf8"), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function responseIdOf(api: UsageApi, body: Record<string, unknown>): string | undefined {
  const id = api === "gemini" ? body.responseId : body.id;
  return typeof id === "string" ? id : undefined;
}

/** The observation attribute that keeps the provider's response id (invoice matching, tracing). */
export const PROVIDER_RESPONSE_ID = "provider_response_id";

/**
 * The provider's response id as an observation attribute, when it can be one exactly: a
 * non-empty string of well-formed text (no U+0000, no unpaired surrogate) of at most 256 bytes.
 * Anything else — no id, a JSON number, a 10 KB id — is left out rather than truncated or
 * escaped: an attribute that is not the provider's id verbatim would match the wrong invoice
 * line, or none. The call is billed either way (the event id is the gateway's own).
 */
function providerAttributes(responseId: string | undefined): Record<string, string> | undefined {
  if (responseId === undefined || responseId === "") return undefined;
  const attributes = { [PROVIDER_RESPONSE_ID]: responseId };
  return AttributesSchema.safeParse(attributes).success ? attributes : undefined;
}

/** Starts the gateway on a loopback port (`port` 0 picks a free one). */
export async function startGateway(options: GatewayOptions, port = 0): Promise<Gateway> {
  const { latch } = options;
  const timeoutMs = options.providerTimeoutMs ?? 30_000;
  const idleTimeoutMs = options.providerIdleTimeoutMs ?? timeoutMs;
  const defaultMaxTokens = options.defaultMaxTokens ?? 1_024;
  /** Settles started and not finished yet. */
  const settling = new Set<Promise<void>>();
  /** Requests being handled (their settles start when they end). */
  const handling = new Set<Promise<void>>();
  const drain = async (work: Set<Promise<void>>) => {
    while (work.size > 0) await Promise.all(work);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const arrivedAt = performance.now();
    const timings: RequestTimings = { reserveMs: 0, providerMs: 0, recordMs: 0, totalMs: 0 };
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

    // 1. Reserve before the call. Fails closed: a quota store that cannot answer denies. The
    // hold id is ours, never the caller's x-request-id: a reserve retried with a known hold id
    // answers "granted" again, so a reused request id would get a call through on a spent hold.
    const reserveFrom = performance.now();
    const hold: Hold | undefined = await latch?.reserve({
      account: tenant,
      amount: reserveEstimate(r.messages, maxTokens),
    });
    if (latch !== undefined) timings.reserveMs = performance.now() - reserveFrom;
    if (hold !== undefined && !hold.granted) {
      return hold.reason === "insufficient"
        ? problem(res, 429, "Quota Exceeded", hold.message)
        : problem(res, 503, "Quota Unavailable", hold.message);
    }

    // From here on the hold is settled on every path (a thrown error included): no hold is
    // left open to expire while its tokens were used. It is settled once proxy() is done, i.e.
    // after the response was handed to the socket (or the error thrown): with the record's
    // result once record() answered, else as failed (voided). The caller does not wait for it.
    let outcome: RecordResult | { status: "failed" } = { status: "failed" };
    const proxy = async () => {
      // 2. Call the provider. The timeout bounds its time to answer; a stream that keeps sending
      // is bounded by silence only (see stream-relay.ts).
      const startedAt = new Date().toISOString();
      // The event id — the idempotency key of the whole billing pipeline — is the gateway's own,
      // one per provider call. Never the provider's response id: a provider, an OpenAI-compatible
      // server or a caching proxy that reuses one would make different calls (of different
      // tenants) share an event id, and all but the first would be refused or dead-lettered as
      // conflicts, unbilled. Nor the caller's x-request-id, which may repeat. Known before the
      // call, so a streamed answer carries it in its headers too.
      const eventId = UsageEventId.fromAttempt(randomUUID(), 0, r.providerId);
      const controller = new AbortController();
      // At the deadline, first read what already arrived: Node runs the timers that fell due
      // while the process was busy (a starved machine, a long GC) before it polls the sockets,
      // so an answer that reached the gateway in time would otherwise be dropped as a 504 (and
      // the call voided while the provider bills it). One turn of the event loop, no grace period.
      let answered = false;
      const answerTimer = setTimeout(
        () =>
          setImmediate(() => {
            if (answered) return;
            controller.abort(new DOMException("no answer", "TimeoutError"));
          }),
        timeoutMs,
      );
      let upstream: Response;
      const providerFrom = performance.now();
      try {
        upstream = await fetch(`${options.providerUrl}${url.pathname}${url.search}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": requestId },
          body: JSON.stringify(body),
          signal: controller.signal,
        });
        answered = true;
      } catch (error) {
        const timedOut = controller.signal.aborted || (error as { name?: string }).name === "TimeoutError";
        return timedOut
          ? problem(res, 504, "Gateway Timeout", `the provider did not answer within ${timeoutMs} ms`)
          : problem(res, 502, "Bad Gateway", "the provider could not be reached");
      } finally {
        clearTimeout(answerTimer);
      }
      if (!upstream.ok) {
        await upstream.body?.cancel();
        return problem(res, 502, "Bad Gateway", `the provider answered ${upstream.status}`);
      }

      // 3. Relay the answer, and find the usage in it.
      let usage: unknown;
      let responseId: string | undefined;
      let payload: Buffer | undefined;
      let relay: RelayOutcome | undefined;
      let estimated = false;
      if (r.stream) {
        relay = await relayStream({
          api: r.api,
          upstream,
          res,
          headers: { "x-latch-event-id": eventId },
          idleTimeoutMs,
          abort: (reason) => controller.abort(new DOMException(reason, "AbortError")),
        });
        const found = usageFromStream(r.api, relay.stream);
        responseId = found.id;
        usage = found.usage;
        if (!relay.complete || usage === undefined) {
          // Cut short (client gone, provider silent or dropped) or no usage in the stream: the
          // provider bills what it generated, so bill the served text, estimated — never free.
          usage = estimatedUsage(r.api, found.usage, promptEstimate(r.messages), relay.servedTextChars);
          estimated = true;
        }
      } else {
        let read = false;
        // As the answer's deadline: what already arrived is read before the silence counts.
        const idle = setTimeout(
          () =>
            setImmediate(() => {
              if (!read) controller.abort(new DOMException("silent", "TimeoutError"));
            }),
          idleTimeoutMs,
        );
        try {
          payload = Buffer.from(await upstream.arrayBuffer());
          read = true;
        } catch {
          // Nothing was served: the caller gets an error and is not billed.
          return problem(res, 502, "Bad Gateway", "the provider's answer was cut off");
        } finally {
          clearTimeout(idle);
        }
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
        } catch {
          return problem(res, 502, "Bad Gateway", "the provider's answer is not JSON");
        }
        usage = r.api === "gemini" ? parsed.usageMetadata : parsed.usage;
        responseId = responseIdOf(r.api, parsed);
      }
      const completedAt = new Date().toISOString();
      timings.providerMs = performance.now() - providerFrom;

      // 4. Record (fails open: stored raw first, spooled locally if the store is down); the
      // response below says how it was recorded, and the hold is settled after it (see handle).
      // The provider's response id is kept as an attribute, when it can be one.
      const attributes = providerAttributes(responseId);
      let result: RecordResult | { status: "failed" } | { status: "unmetered" } = latch
        ? { status: "failed" }
        : { status: "unmetered" };
      if (latch !== undefined && usage !== undefined) {
        const observation = (kind: "estimated" | "stream_accumulated" | "provider_reported") => ({
          eventId,
          subject: { tenantId: tenant },
          model: { billableModel: r.model },
          provider: { providerId: r.providerId },
          source: { kind },
          outcome:
            relay === undefined || relay.complete
              ? ({ kind: "success" } as const)
              : relay.endedBy === "client_aborted"
                ? ({ kind: "error", code: "client_aborted" } as const)
                : relay.endedBy === "provider_idle"
                  ? ({ kind: "timeout" } as const)
                  : ({ kind: "error", code: "provider_stream_error" } as const),
          timing: { startedAt, completedAt },
          ...(attributes !== undefined ? { attributes } : {}),
        });
        const recordFrom = performance.now();
        try {
          // The usage came off the wire and the API is chosen per route: assert the input type;
          // record() validates the payload at run time (invalid_input below).
          const input = {
            api: r.api,
            usage,
            observation: observation(
              estimated ? "estimated" : r.stream ? "stream_accumulated" : "provider_reported",
            ),
          } as ProviderUsageInput;
          result = await latch.record(input, { hold });
        } catch (error) {
          // A usage payload the normalizer refuses (a shape it does not know) must not make the
          // call free: the answer was served, so bill it, estimated.
          if (estimated || (error as { code?: unknown }).code !== "invalid_input") throw error;
          result = await latch.record(
            {
              api: r.api,
              usage: estimatedUsage(
                r.api,
                undefined,
                promptEstimate(r.messages),
                relay?.servedTextChars ?? payload?.byteLength ?? 0,
              ),
              observation: observation("estimated"),
            },
            { hold },
          );
        } finally {
          timings.recordMs = performance.now() - recordFrom;
        }
      }
      if (result.status !== "unmetered") outcome = result;

      if (payload !== undefined) {
        const headers: http.OutgoingHttpHeaders = {
          "content-type": "application/json",
          "content-length": payload.byteLength,
          "x-latch-event-id": eventId,
          "x-latch-status": result.status,
        };
        // Only an id kept as the attribute (≤ 256 bytes): a 10 KB one would not fit a client's
        // header limit, and the answer, billed, would not reach the caller.
        if (attributes !== undefined)
          headers["x-latch-provider-response-id"] = headerSafe(attributes[PROVIDER_RESPONSE_ID] as string);
        if (result.status === "rated")
          headers["x-latch-cost"] = `${result.record.total} ${result.record.currency}`;
        res.writeHead(200, headers);
        res.end(payload);
        answered200();
      } else {
        // Streamed: the metering outcome goes in a last comment line (headers are long gone).
        if (res.destroyed) return;
        // (A JSON-array stream must stay valid JSON: nothing is appended to it; its event id is
        // in the response headers.) The event id is ours ("<uuid>:0:<provider>"): no provider
        // bytes reach this line, so none can end the comment and inject an event.
        if (relay?.format === "sse") res.end(`: latch event ${eventId} ${result.status}\n\n`);
        else res.end();
        answered200();
      }
    };
    const answered200 = () => {
      if (options.onTimings === undefined) return;
      timings.totalMs = performance.now() - arrivedAt;
      try {
        options.onTimings(timings);
      } catch (error) {
        console.error("gateway: onTimings threw:", error);
      }
    };
    try {
      await proxy();
    } finally {
      if (hold !== undefined && latch !== undefined) settleLater(latch, hold, outcome);
    }
  }

  /** Settles `hold` in the background, tracked for settled() and close(); a failure is logged. */
  function settleLater(latch: Latch, hold: Hold, result: RecordResult | { status: "failed" }): void {
    let started: Promise<unknown>;
    try {
      started = latch.settle(hold, result);
    } catch (error) {
      started = Promise.reject(error);
    }
    const done = started.then(
      () => undefined,
      // A store error was reported already (onWarning: settle_failed) and answered
      // { settled: false }: reconcileQuota() commits it from the record. Only what no retry
      // fixes (a validation error, a conflict) is thrown: logged here, never unhandled.
      (error: unknown) => console.error(`gateway: settling hold ${hold.holdId} failed:`, error),
    );
    settling.add(done);
    void done.then(() => settling.delete(done));
  }

  const server = http.createServer((req, res) => {
    const done = handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) problem(res, 500, "Internal Server Error", String(error));
      else res.destroy();
    });
    handling.add(done);
    void done.then(() => handling.delete(done));
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    server,
    async settled() {
      // A snapshot: traffic that keeps arriving must not keep this waiting. A request's settle
      // starts before its handling ends, so it is in `settling` once `handling`'s are done.
      await Promise.all([...handling]);
      await Promise.all([...settling]);
    },
    async close() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await drain(handling);
      await drain(settling);
    },
  };
}
