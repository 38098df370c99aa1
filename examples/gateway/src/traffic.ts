/**
 * Client traffic for the gateway: a deterministic mix of OpenAI, Anthropic and Gemini
 * requests, streamed and not, from several tenants, sent over HTTP with a bounded number in
 * flight. Used by the demo, the end-to-end test and the benchmark.
 */

export interface TrafficOptions {
  gatewayUrl: string;
  requests: number;
  /** Requests in flight at once. Default 16. */
  concurrency?: number;
  tenants: readonly string[];
  /** Prefix of every `x-request-id` (unique per run). */
  runId: string;
  seed?: number;
  /**
   * Keeps traffic flowing until `until` settles (a test's faults running beside it): the last
   * `requests` requests are sent one per worker per second while it is pending, at full speed
   * once it settled. Without it, a fast run could finish before the faults begin.
   */
  holdLast?: { requests: number; until: Promise<unknown> };
}

export interface TrafficResult {
  requestId: string;
  tenant: string;
  shape: string;
  status: number;
  /** The Latch event id the gateway metered the call as (successful calls). */
  eventId?: string;
  /** rated | unpriced | spooled. */
  latchStatus?: string;
  /** Milliseconds from sending the request to reading the whole response, as the client saw them. */
  ms: number;
}

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SHAPES = [
  "openai",
  "openai-stream",
  "anthropic",
  "anthropic-stream",
  "gemini",
  "gemini-stream",
] as const;

/** The path and body of request `i`. */
export function requestFor(i: number, random: () => number): { shape: string; path: string; body: unknown } {
  const shape = SHAPES[i % SHAPES.length] as (typeof SHAPES)[number];
  const prompt = "Summarise the quarterly report. ".repeat(1 + Math.floor(random() * 30));
  const maxTokens = 64 + Math.floor(random() * 192);
  const stream = shape.endsWith("-stream");
  if (shape.startsWith("openai")) {
    return {
      shape,
      path: "/v1/chat/completions",
      body: { model: "gpt-4o", messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, stream },
    };
  }
  if (shape.startsWith("anthropic")) {
    return {
      shape,
      path: "/v1/messages",
      body: {
        model: "claude-sonnet-4-5",
        system: "You are terse.",
        messages: [{ role: "user", content: prompt }],
        max_tokens: maxTokens,
        stream,
      },
    };
  }
  return {
    shape,
    // Streamed as SSE (`alt=sse`, what Google's SDKs ask for), so the gateway can append its
    // metering trailer; the JSON-array form is covered by test/streams.test.ts.
    path: `/v1beta/models/gemini-2.5-pro:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}`,
    body: {
      contents: [{ role: "user", parts: [{ text: prompt }] }],
      generationConfig: { maxOutputTokens: maxTokens },
    },
  };
}

/** Sends one request; returns the status and, for a success, how the gateway metered it. */
export async function send(
  gatewayUrl: string,
  tenant: string,
  requestId: string,
  request: { path: string; body: unknown },
): Promise<{ status: number; eventId?: string; latchStatus?: string }> {
  const response = await fetch(`${gatewayUrl}${request.path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": requestId },
    body: JSON.stringify(request.body),
  });
  const text = await response.text();
  if (response.status !== 200) return { status: response.status };
  // Every answer names its event id in a header (a stream too: the id is the gateway's, known
  // before the call); the status is a header, or a stream's last line.
  const header = response.headers.get("x-latch-event-id");
  const eventId = header === null ? {} : { eventId: header };
  const status = response.headers.get("x-latch-status");
  if (status !== null) return { status: 200, ...eventId, latchStatus: status };
  const trailer = /^: latch event (\S+) (\S+)$/m.exec(text);
  if (trailer === null) return { status: 200, ...eventId };
  if (header !== null && trailer[1] !== header)
    throw new Error(`request ${requestId}: the last line names event ${trailer[1]}, the header ${header}`);
  return { status: 200, eventId: trailer[1] as string, latchStatus: trailer[2] as string };
}

export async function driveTraffic(options: TrafficOptions): Promise<TrafficResult[]> {
  const random = rng(options.seed ?? 7);
  const plan = Array.from({ length: options.requests }, (_, i) => ({
    i,
    tenant: options.tenants[Math.floor(random() * options.tenants.length)] as string,
    request: requestFor(i, random),
  }));
  const results = new Array<TrafficResult>(plan.length);
  let next = 0;
  let held = options.holdLast !== undefined;
  const released = () => {
    held = false;
  };
  options.holdLast?.until.then(released, released);
  const slowFrom = plan.length - (options.holdLast?.requests ?? 0);
  const worker = async () => {
    while (next < plan.length) {
      if (held && next >= slowFrom) await new Promise((r) => setTimeout(r, 1_000));
      if (next >= plan.length) break;
      const { i, tenant, request } = plan[next++] as (typeof plan)[number];
      const requestId = `${options.runId}-${i}`;
      const startedAt = performance.now();
      const r = await send(options.gatewayUrl, tenant, requestId, request);
      results[i] = { requestId, tenant, shape: request.shape, ...r, ms: performance.now() - startedAt };
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
  return results;
}
