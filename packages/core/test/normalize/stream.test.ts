import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchValidationError } from "../../src/errors/index.js";
import {
  accumulateStream,
  createStreamAccumulator,
  STREAM_APIS,
  type StreamApi,
} from "../../src/normalize/stream/index.js";
import { thrown } from "../support.js";

/** Raw SSE text: one `data:` event per payload. */
function sse(...payloads: unknown[]): string {
  return payloads.map((p) => `data: ${typeof p === "string" ? p : JSON.stringify(p)}\n\n`).join("");
}

describe("OpenAI chat streams", () => {
  it("takes the usage of the last chunk (include_usage), and the envelope fields", () => {
    const text = sse(
      {
        id: "c1",
        object: "chat.completion.chunk",
        created: 1,
        model: "gpt-4o-mini-2024-07-18",
        service_tier: "default",
        choices: [{ index: 0, delta: { content: "Hi" } }],
        usage: null,
      },
      {
        id: "c1",
        object: "chat.completion.chunk",
        created: 1,
        model: "gpt-4o-mini-2024-07-18",
        service_tier: "default",
        choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
        usage: null,
      },
      {
        id: "c1",
        object: "chat.completion.chunk",
        created: 1,
        model: "gpt-4o-mini-2024-07-18",
        service_tier: "default",
        choices: [],
        usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
      },
      "[DONE]",
    );
    expect(accumulateStream("openaiChat", text)).toEqual({
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
      response: {
        id: "c1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-mini-2024-07-18",
        service_tier: "default",
        usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
      },
    });
  });

  it("has no usage when the request did not ask for it", () => {
    const text = sse({ id: "c2", choices: [{ index: 0, delta: { content: "x" } }] }, "[DONE]");
    expect(accumulateStream("openaiChat", text).usage).toBeUndefined();
  });

  it("running totals on several chunks: the last one wins, never a sum", () => {
    const events = [
      { id: "m", usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } },
      { id: "m", usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } },
    ];
    expect(accumulateStream("openaiChat", events).usage).toEqual({
      prompt_tokens: 5,
      completion_tokens: 7,
      total_tokens: 12,
    });
  });

  it("reads Groq's x_groq.usage when the chunk has no top-level usage", () => {
    const events = [
      { id: "g", x_groq: { id: "req_1" }, choices: [{ index: 0, delta: { content: "a" } }] },
      {
        id: "g",
        choices: [],
        x_groq: { id: "req_1", usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
      },
    ];
    expect(accumulateStream("openaiChat", events).usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 4,
      total_tokens: 7,
    });
  });

  it("OpenRouter: the same shape, with its provider and cost fields kept", () => {
    const usage = { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10, cost: 0.00002 };
    const r = accumulateStream("openrouter", [
      { id: "gen-1", provider: "OpenAI", model: "openai/gpt-4o" },
      { id: "gen-1", provider: "OpenAI", choices: [], usage },
    ]);
    expect(r.usage).toEqual(usage);
    expect(r.response).toEqual({
      id: "gen-1",
      provider: "OpenAI",
      model: "openai/gpt-4o",
      object: "chat.completion",
      usage,
    });
  });
});

describe("OpenAI Responses streams", () => {
  it("the terminal event's response is the envelope; earlier ones echo the requested tier", () => {
    const base = { id: "resp_1", object: "response", model: "gpt-5-mini-2025-08-07" };
    const usage = {
      input_tokens: 53,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 469,
      output_tokens_details: { reasoning_tokens: 448 },
      total_tokens: 522,
    };
    const r = accumulateStream("openaiResponses", [
      {
        type: "response.created",
        response: { ...base, status: "in_progress", service_tier: "auto", usage: null },
      },
      { type: "response.output_text.delta", delta: "x" },
      {
        type: "response.completed",
        response: {
          ...base,
          status: "completed",
          service_tier: "flex",
          output: [{ type: "message" }],
          usage,
        },
      },
    ]);
    expect(r.usage).toEqual(usage);
    expect(r.response.service_tier).toBe("flex");
    expect(r.response.output).toEqual([{ type: "message" }]);
  });

  it("fills an empty terminal output from response.output_item.done, in output_index order", () => {
    const r = accumulateStream("openaiResponses", [
      { type: "response.output_item.done", output_index: 1, item: { type: "message" } },
      {
        type: "response.output_item.done",
        output_index: 0,
        item: { type: "web_search_call", status: "completed" },
      },
      {
        type: "response.completed",
        response: { id: "r", output: [], usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 } },
      },
    ]);
    expect(r.response.output).toEqual([
      { type: "web_search_call", status: "completed" },
      { type: "message" },
    ]);
  });

  it("no terminal event: no usage", () => {
    const r = accumulateStream("openaiResponses", [
      { type: "response.created", response: { id: "r", usage: null } },
    ]);
    expect(r.usage).toBeUndefined();
    expect(r.response).toEqual({ id: "r", usage: null });
  });
});

describe("Anthropic streams", () => {
  const start = {
    type: "message_start",
    message: {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [],
      usage: {
        input_tokens: 12,
        cache_read_input_tokens: 1500,
        cache_creation_input_tokens: 0,
        output_tokens: 1,
        service_tier: "standard",
      },
    },
  };

  it("message_start usage overlaid with the cumulative message_delta usage (never added)", () => {
    const r = accumulateStream("anthropic", [
      start,
      {
        type: "content_block_start",
        index: 0,
        content_block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search" },
      },
      { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
      { type: "message_delta", delta: { stop_reason: "pause_turn" }, usage: { output_tokens: 40 } },
      {
        type: "message_delta",
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { output_tokens: 95, server_tool_use: { web_search_requests: 2 } },
      },
      { type: "message_stop" },
    ]);
    const usage = {
      input_tokens: 12,
      cache_read_input_tokens: 1500,
      cache_creation_input_tokens: 0,
      output_tokens: 95,
      service_tier: "standard",
      server_tool_use: { web_search_requests: 2 },
    };
    expect(r.usage).toEqual(usage);
    expect(r.response).toEqual({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [
        { type: "server_tool_use", id: "srvtoolu_1", name: "web_search" },
        { type: "text", text: "" },
      ],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage,
    });
  });

  it("input counts repeated in message_delta replace those of message_start; nulls do not", () => {
    const r = accumulateStream("anthropic", [
      start,
      {
        type: "message_delta",
        delta: {},
        usage: { input_tokens: 61, cache_read_input_tokens: null, output_tokens: 2 },
      },
    ]);
    expect(r.usage).toMatchObject({ input_tokens: 61, cache_read_input_tokens: 1500, output_tokens: 2 });
  });

  it("drops a TTL breakdown a later cache_creation_input_tokens outdated (and keeps a consistent one)", () => {
    const withBreakdown = {
      type: "message_start",
      message: {
        id: "m",
        usage: {
          input_tokens: 2,
          cache_creation_input_tokens: 3068,
          cache_creation: { ephemeral_5m_input_tokens: 3068, ephemeral_1h_input_tokens: 0 },
          output_tokens: 69,
        },
      },
    };
    const raised = accumulateStream("anthropic", [
      withBreakdown,
      { type: "message_delta", delta: {}, usage: { cache_creation_input_tokens: 3337, output_tokens: 198 } },
    ]);
    expect(raised.usage).toEqual({ input_tokens: 2, cache_creation_input_tokens: 3337, output_tokens: 198 });
    const same = accumulateStream("anthropic", [
      withBreakdown,
      { type: "message_delta", delta: {}, usage: { cache_creation_input_tokens: 3068, output_tokens: 198 } },
    ]);
    expect(same.usage).toMatchObject({
      cache_creation: { ephemeral_5m_input_tokens: 3068, ephemeral_1h_input_tokens: 0 },
    });
  });

  it("a second message_start starts over", () => {
    const r = accumulateStream("anthropic", [
      start,
      { type: "message_delta", delta: {}, usage: { output_tokens: 9 } },
      { type: "message_start", message: { id: "msg_2", usage: { input_tokens: 3, output_tokens: 1 } } },
    ]);
    expect(r.usage).toEqual({ input_tokens: 3, output_tokens: 1 });
    expect(r.response.id).toBe("msg_2");
  });
});

describe("Gemini streams", () => {
  it("the last usageMetadata wins; candidates keep finishReason and grounding", () => {
    const r = accumulateStream("gemini", [
      {
        candidates: [{ content: { parts: [{ text: "a" }] } }],
        usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
        modelVersion: "gemini-2.5-flash",
        responseId: "x",
      },
      {
        candidates: [
          {
            content: { parts: [{ text: "b" }] },
            finishReason: "STOP",
            groundingMetadata: { webSearchQueries: ["q"] },
          },
        ],
        usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 4, totalTokenCount: 13 },
        modelVersion: "gemini-2.5-flash",
        responseId: "x",
      },
    ]);
    expect(r.usage).toEqual({ promptTokenCount: 9, candidatesTokenCount: 4, totalTokenCount: 13 });
    expect(r.response).toEqual({
      modelVersion: "gemini-2.5-flash",
      responseId: "x",
      candidates: [{ index: 0, finishReason: "STOP", groundingMetadata: { webSearchQueries: ["q"] } }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 4, totalTokenCount: 13 },
    });
  });

  it("reads \\r\\n-framed SSE as Gemini sends it", () => {
    const text =
      'data: {"usageMetadata":{"promptTokenCount":1}}\r\n\r\ndata: {"usageMetadata":{"promptTokenCount":2}}\r\n\r\n';
    expect(accumulateStream("gemini", text).usage).toEqual({ promptTokenCount: 2 });
  });
});

describe("SSE decoding", () => {
  it("skips comments, event/id lines and [DONE]; joins multi-line data; takes an unterminated last event on end()", () => {
    const text = [
      ": keep-alive",
      "event: message_start",
      "id: 1",
      'data: {"type":"message_start",',
      'data: "message":{"id":"m","usage":{"input_tokens":4,"output_tokens":1}}}',
      "",
      "data: [DONE]",
      "",
      'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":7}}',
    ].join("\n");
    expect(accumulateStream("anthropic", text).usage).toEqual({ input_tokens: 4, output_tokens: 7 });
    const acc = createStreamAccumulator("anthropic");
    acc.write(text);
    expect(acc.result().usage).toEqual({ input_tokens: 4, output_tokens: 1 }); // the last event is still open
    acc.end();
    expect(acc.result().usage).toEqual({ input_tokens: 4, output_tokens: 7 });
  });

  it(
    "an 8 MB line written in 1 KB chunks is decoded in linear time (the unfinished line is not rescanned per chunk)",
    { timeout: 10_000 },
    () => {
      // A Gemini image stream puts a whole base64 image on one `data:` line, and a relay writes
      // what each socket read gives it. Rescanning (and copying) the unfinished line on every
      // chunk made this quadratic — 8,192 chunks × 4 MB on average, ~30 s here — against a few
      // milliseconds when each chunk is scanned once.
      const big = `data: {"blob":"${"a".repeat(8 * 1024 * 1024)}"}\n\n`;
      const acc = createStreamAccumulator("openaiChat");
      for (let i = 0; i < big.length; i += 1024) acc.write(big.slice(i, i + 1024));
      acc.write(sse({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
      acc.end();
      expect(acc.result().usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    },
  );

  it("ignores payloads that are not JSON objects", () => {
    expect(accumulateStream("openaiChat", sse("42", "[1,2]", "null", "not json")).response).toEqual({
      object: "chat.completion",
    });
  });

  it("rejects an unknown api, naming none of the input", () => {
    const e = thrown(() => createStreamAccumulator("bedrock" as StreamApi));
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).code).toBe("invalid_input");
    expect((e as LatchValidationError).message).toBe(
      `Invalid stream api: (root): expected one of ${STREAM_APIS.join(", ")}`,
    );
  });
});

describe("properties", () => {
  const fixtures: Array<[StreamApi, string]> = [
    ["anthropic", "anthropic/test_anthropic_web_search_tool_stream.0.sse"],
    ["openaiResponses", "openai/test_openai_responses_model_web_search_tool_stream.0.sse"],
    ["gemini", "google/test_google_model_web_search_tool_stream.0.sse"],
    ["openrouter", "openrouter/test_openrouter_stream_with_native_options.0.sse"],
    ["openaiChat", "groq/test_tool_use_failed_error_streaming.1.sse"],
  ];
  const texts = fixtures.map(([api, file]) => {
    const text = readFileSync(new URL(`../fixtures/real/${file}`, import.meta.url), "utf8");
    return { api, text, whole: accumulateStream(api, text) };
  });

  it("recorded streams contain usage (the property below is not vacuous)", () => {
    for (const t of texts) expect(t.whole.usage).toBeDefined();
  });

  it("the result does not depend on where the stream is split (text or bytes, CRLF or LF)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: texts.length - 1 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }),
        fc.boolean(),
        fc.boolean(),
        (which, cuts, asBytes, crlf) => {
          const t = texts[which]!;
          const text = crlf ? t.text.replace(/\r?\n/g, "\r\n") : t.text;
          const data: string | Uint8Array = asBytes ? new TextEncoder().encode(text) : text;
          const points = [...new Set(cuts.map((c) => Math.floor(c * data.length)))].sort((a, b) => a - b);
          const acc = createStreamAccumulator(t.api);
          let from = 0;
          for (const p of [...points, data.length]) {
            acc.write(data.slice(from, p));
            from = p;
          }
          acc.end();
          expect(acc.result()).toEqual(t.whole);
        },
      ),
      { numRuns: 200 },
    );
  });
});
