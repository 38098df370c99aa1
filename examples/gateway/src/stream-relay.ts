/**
 * Relaying a streamed provider answer to the client while reading its usage.
 *
 * A stream is relayed byte for byte. Two things can end it early, and both are billed,
 * because the provider bills what it generated:
 * - the provider goes silent for longer than the idle timeout, or drops the connection;
 * - the client goes away (the upstream request is then cancelled, so the provider stops).
 * A whole-call timeout would cut long answers that are still sending: only silence counts.
 *
 * Formats: Server-Sent Events (OpenAI, Anthropic, Gemini with `?alt=sse`), and Gemini's
 * `:streamGenerateContent` without `alt=sse`, which streams one JSON array of chunks.
 */
import type * as http from "node:http";
import { createStreamAccumulator, type StreamUsage, type UsageApi } from "@latch/core";

export interface RelayOutcome {
  /**
   * What the stream's events (SSE `data:` payloads, or the JSON array's chunks) reported,
   * accumulated as they arrived: no event is kept, so a long answer costs no memory.
   */
  stream: StreamUsage;
  /** True when the provider ended the stream normally and the client got all of it. */
  complete: boolean;
  /** Why the stream ended early, when it did. */
  endedBy?: "client_aborted" | "provider_idle" | "provider_error";
  /** Characters of generated text relayed to the client (for the estimate of an incomplete stream). */
  servedTextChars: number;
  /** `sse`, or `json-array` for Gemini without `alt=sse` (nothing may be appended to it). */
  format: "sse" | "json-array";
}

/** Text a chunk carries to the client: OpenAI deltas, Anthropic text/thinking deltas, Gemini parts. */
function textOfEvent(api: UsageApi, event: unknown): number {
  if (typeof event !== "object" || event === null) return 0;
  const e = event as Record<string, unknown>;
  let chars = 0;
  if (api === "anthropic") {
    const delta = e.delta as { text?: unknown; thinking?: unknown; partial_json?: unknown } | undefined;
    for (const v of [delta?.text, delta?.thinking, delta?.partial_json]) {
      if (typeof v === "string") chars += v.length;
    }
    return chars;
  }
  for (const choice of Array.isArray(e.choices) ? e.choices : []) {
    const delta = (choice as { delta?: { content?: unknown; reasoning_content?: unknown } }).delta;
    for (const v of [delta?.content, delta?.reasoning_content]) if (typeof v === "string") chars += v.length;
  }
  for (const candidate of Array.isArray(e.candidates) ? e.candidates : []) {
    const parts = (candidate as { content?: { parts?: unknown } }).content?.parts;
    for (const part of Array.isArray(parts) ? parts : []) {
      const text = (part as { text?: unknown }).text;
      if (typeof text === "string") chars += text.length;
    }
  }
  return chars;
}

/**
 * Longest SSE line or array element read for usage (usage events are a few hundred bytes). A
 * longer one — a provider's bytes are not trusted — is relayed but not metered, and never held
 * whole: a line that never ends would otherwise grow the gateway's memory without bound.
 */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;

/**
 * Incremental reader of a JSON array of objects (`[{…},{…}]`), as Gemini streams without
 * `alt=sse`: yields each top-level element as soon as its closing brace arrives.
 */
class JsonArrayReader {
  /** The unfinished element (from its `{`), or nothing. Appended to, never rescanned. */
  #buffer = "";
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** Where the unfinished element starts in the buffer; -1 when there is none (or it is dropped). */
  #start = -1;
  /** Inside an element longer than MAX_EVENT_CHARS: scanned to its end, not kept. */
  #dropping = false;

  push(text: string): unknown[] {
    const out: unknown[] = [];
    const offset = this.#buffer.length;
    this.#buffer += text;
    for (let j = 0; j < text.length; j++) {
      const c = text[j];
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === "\\") this.#escaped = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"') this.#inString = true;
      else if (c === "{") {
        if (this.#depth === 0) this.#start = offset + j;
        this.#depth++;
      } else if (c === "}" && this.#depth > 0) {
        this.#depth--;
        if (this.#depth === 0) {
          if (this.#start !== -1 && !this.#dropping) {
            try {
              out.push(JSON.parse(this.#buffer.slice(this.#start, offset + j + 1)));
            } catch {
              // not JSON after all: relayed, not metered
            }
          }
          this.#start = -1;
          this.#dropping = false;
        }
      }
    }
    // Keep only the unfinished element (nothing of one being dropped).
    if (this.#depth === 0 || this.#dropping || this.#buffer.length - this.#start > MAX_EVENT_CHARS) {
      this.#dropping = this.#depth > 0;
      this.#buffer = "";
      this.#start = -1;
    } else if (this.#start > 0) {
      this.#buffer = this.#buffer.slice(this.#start);
      this.#start = 0;
    }
    return out;
  }
}

/** Incremental reader of Server-Sent Events: yields each `data:` payload that is JSON. */
class SseReader {
  /** The unfinished last line. */
  #buffer = "";
  /** Inside a line longer than MAX_EVENT_CHARS: skipped up to its newline. */
  #skipping = false;

  push(text: string): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = this.#skipping ? "" : (this.#buffer + text.slice(start, nl)).trim();
      this.#buffer = "";
      this.#skipping = false;
      start = nl + 1;
      if (line.startsWith("data:") && line !== "data: [DONE]") {
        try {
          out.push(JSON.parse(line.slice(5)));
        } catch {
          // not JSON: relayed, not metered
        }
      }
    }
    if (!this.#skipping) this.#buffer += text.slice(start);
    if (this.#buffer.length > MAX_EVENT_CHARS) {
      this.#buffer = "";
      this.#skipping = true;
    }
    return out;
  }
}

export interface RelayOptions {
  api: "openaiChat" | "anthropic" | "gemini";
  upstream: Response;
  res: http.ServerResponse;
  /** More response headers (the gateway's event id). */
  headers?: http.OutgoingHttpHeaders;
  /** Aborts the upstream request (the provider stops generating). */
  abort: (reason: "client_aborted" | "provider_idle") => void;
  /** Longest silence allowed between two chunks of the provider's answer. */
  idleTimeoutMs: number;
}

/** Relays the upstream stream to `res` and returns what was relayed (never throws). */
export async function relayStream(options: RelayOptions): Promise<RelayOutcome> {
  const { api, upstream, res } = options;
  const contentType = upstream.headers.get("content-type") ?? "";
  const arrayStream = api === "gemini" && !contentType.includes("text/event-stream");
  res.writeHead(200, {
    "content-type": arrayStream ? "application/json" : "text/event-stream",
    "cache-control": "no-cache",
    ...options.headers,
  });
  const reader = arrayStream ? new JsonArrayReader() : new SseReader();
  const decoder = new TextDecoder();
  const accumulator = createStreamAccumulator(api);
  let servedTextChars = 0;
  let endedBy: RelayOutcome["endedBy"];

  const onClientGone = () => {
    if (!res.writableFinished && endedBy === undefined) {
      endedBy = "client_aborted";
      options.abort("client_aborted");
    }
  };
  res.on("close", onClientGone);
  let idle: NodeJS.Timeout | undefined;
  /** Ends a wait for the client (see below) when the stream is cut meanwhile. */
  let wake: (() => void) | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (endedBy === undefined) endedBy = "provider_idle";
      options.abort("provider_idle");
      wake?.();
    }, options.idleTimeoutMs);
  };
  armIdle();
  try {
    for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) {
      armIdle();
      const flowing = res.destroyed || res.write(chunk);
      for (const event of reader.push(decoder.decode(chunk, { stream: true }))) {
        accumulator.push(event);
        // Text is served only while the client is still there.
        if (endedBy === undefined) servedTextChars += textOfEvent(api, event);
      }
      if (!flowing && endedBy === undefined) {
        // Backpressure: the client reads slower than the provider sends. Wait for it instead of
        // buffering the answer; a client that reads nothing for the idle timeout ends the
        // stream as a silent provider would.
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            wake = undefined;
            resolve();
          };
          wake = done;
          res.on("drain", done);
          res.on("close", done);
        });
      }
      if (endedBy === "client_aborted") break;
    }
  } catch {
    if (endedBy === undefined) endedBy = "provider_error";
  } finally {
    clearTimeout(idle);
    res.off("close", onClientGone);
  }
  return {
    stream: accumulator.result(),
    complete: endedBy === undefined,
    ...(endedBy !== undefined ? { endedBy } : {}),
    servedTextChars,
    format: arrayStream ? "json-array" : "sse",
  };
}

/**
 * The usage payload a streamed response carried, read by `@latch/core`'s stream accumulator
 * (OpenAI's last chunk `usage`, Anthropic's `message_start` usage completed by
 * `message_delta`, Gemini's last `usageMetadata`), and the response id. Only final when the
 * stream completed (Anthropic's `message_start` output count is a placeholder).
 */
export function usageFromStream(
  api: "openaiChat" | "anthropic" | "gemini",
  stream: StreamUsage,
): { usage: Record<string, unknown> | undefined; id?: string } {
  const { usage, response } = stream;
  const id = response[api === "gemini" ? "responseId" : "id"];
  return { usage: usage === undefined ? undefined : { ...usage }, ...(typeof id === "string" ? { id } : {}) };
}

/** Tokens of generated text, estimated from its characters (about four per token). */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/**
 * A provider-shaped usage payload for a stream that ended before its final count: the prompt
 * side as the provider reported it at the start where it did (Anthropic's `message_start`,
 * Gemini's partial `usageMetadata`), else `promptEstimate`; the output side estimated from
 * the text relayed to the client. Recorded with `source.kind: "estimated"`, so a later
 * correction can replace it with the provider's figure.
 */
export function estimatedUsage(
  api: UsageApi,
  partial: Record<string, unknown> | undefined,
  promptEstimate: number,
  servedTextChars: number,
): Record<string, unknown> {
  const output = estimateTokens(servedTextChars);
  if (api === "anthropic") {
    const base = partial ?? { input_tokens: promptEstimate };
    return { ...base, output_tokens: output };
  }
  if (api === "gemini") {
    const prompt = typeof partial?.promptTokenCount === "number" ? partial.promptTokenCount : promptEstimate;
    const cached = typeof partial?.cachedContentTokenCount === "number" ? partial.cachedContentTokenCount : 0;
    return {
      promptTokenCount: prompt,
      ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
      candidatesTokenCount: output,
      totalTokenCount: prompt + output,
    };
  }
  return { prompt_tokens: promptEstimate, completion_tokens: output, total_tokens: promptEstimate + output };
}
