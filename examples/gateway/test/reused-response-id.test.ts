/**
 * A provider that answers every call with the same response id (an OpenAI-compatible server, a
 * caching proxy, a hostile upstream), with each call's own usage, from two tenants, on the
 * embedded default, on Postgres + Redis and on Postgres + Redis + NATS JetStream.
 *
 * Found by an adversarial pass: the gateway's event id was `<provider response id>:0:<provider>`,
 * so the calls shared one event id. Every call answered 200 and was charged against its quota,
 * but only the first was stored: on JetStream the others were dead-lettered as
 * idempotency_conflict (another tenant's call lost under the first tenant's id); on the
 * gateway-only deployments the second call got a 500 (or a cut stream) after the provider was
 * paid, unbilled. Now the event id is the gateway's own, one per call, and the provider's id is
 * an attribute of the record: every call is stored once, with its tenant and its tokens.
 */
import { randomUUID } from "node:crypto";
import { accumulateStream, type RatedUsageRecord } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { type Gateway, startGateway } from "../src/gateway.js";
import { DEPLOYMENTS, until, useDeployment } from "./support/deployments.js";

/** The one id the provider answers every call of an API with. */
const SAME_ID = { openaiChat: "chatcmpl-same", anthropic: "msg_same", gemini: "resp-same" } as const;
type Api = keyof typeof SAME_ID;

const prompt = "Summarise the quarterly report. ".repeat(15);
const SHAPES: Array<{
  name: string;
  api: Api;
  path: string;
  body: unknown;
  format: "json" | "sse" | "array";
}> = [
  {
    name: "openai",
    api: "openaiChat",
    path: "/v1/chat/completions",
    body: { model: "gpt-4o", messages: [{ role: "user", content: prompt }], max_tokens: 200 },
    format: "json",
  },
  {
    name: "openai-stream",
    api: "openaiChat",
    path: "/v1/chat/completions",
    body: { model: "gpt-4o", messages: [{ role: "user", content: prompt }], max_tokens: 200, stream: true },
    format: "sse",
  },
  {
    name: "anthropic",
    api: "anthropic",
    path: "/v1/messages",
    body: { model: "claude-sonnet-4-5", messages: [{ role: "user", content: prompt }], max_tokens: 200 },
    format: "json",
  },
  {
    name: "anthropic-stream",
    api: "anthropic",
    path: "/v1/messages",
    body: {
      model: "claude-sonnet-4-5",
      messages: [{ role: "user", content: prompt }],
      max_tokens: 200,
      stream: true,
    },
    format: "sse",
  },
  ...(["generateContent", "streamGenerateContent?alt=sse", "streamGenerateContent"] as const).map(
    (method) => ({
      name: `gemini ${method}`,
      api: "gemini" as const,
      path: `/v1beta/models/gemini-2.5-pro:${method}`,
      body: {
        contents: [{ role: "user", parts: [{ text: prompt }] }],
        generationConfig: { maxOutputTokens: 200 },
      },
      format:
        method === "generateContent"
          ? ("json" as const)
          : method.endsWith("alt=sse")
            ? ("sse" as const)
            : ("array" as const),
    }),
  ),
];

/** Every token of a provider usage payload (what the stored record's token meters add up to). */
function totalOf(api: Api, usage: Record<string, unknown> | undefined): number {
  const n = (key: string) => {
    const v = usage?.[key];
    if (typeof v !== "number") throw new Error(`usage without ${key}: ${JSON.stringify(usage)}`);
    return v;
  };
  if (api === "openaiChat") return n("total_tokens");
  if (api === "gemini") return n("totalTokenCount");
  return (
    n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens") + n("output_tokens")
  );
}

interface Served {
  tenant: string;
  shape: string;
  api: Api;
  format: "json" | "sse" | "array";
  status: number;
  /** The body as the client read it (or why it could not). */
  text: string;
  /** The event id named by the answer: its header, else a stream's last line. */
  eventId: string | null;
  headerEventId: string | null;
  /** x-latch-status, or a stream's last line. */
  latchStatus: string | undefined;
  /** The response id and the total tokens the provider answered, read from the body. */
  responseId: unknown;
  tokens: number;
  headerResponseId: string | null;
}

async function call(gateway: Gateway, tenant: string, shape: (typeof SHAPES)[number]): Promise<Served> {
  const response = await fetch(`${gateway.url}${shape.path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": randomUUID() },
    body: JSON.stringify(shape.body),
  });
  // Before the fix, a stream whose record() threw was cut: say so instead of throwing here.
  const text = await response.text().catch((error: unknown) => `(cut: ${String(error)})`);
  const served: Served = {
    tenant,
    shape: shape.name,
    api: shape.api,
    format: shape.format,
    status: response.status,
    text,
    eventId: response.headers.get("x-latch-event-id"),
    headerEventId: response.headers.get("x-latch-event-id"),
    latchStatus: response.headers.get("x-latch-status") ?? undefined,
    responseId: undefined,
    tokens: Number.NaN,
    headerResponseId: response.headers.get("x-latch-provider-response-id"),
  };
  if (response.status !== 200 || text.startsWith("(cut")) return served;
  if (shape.format === "json") {
    const body = JSON.parse(text) as Record<string, unknown>;
    served.responseId = shape.api === "gemini" ? body.responseId : body.id;
    served.tokens = totalOf(
      shape.api,
      (shape.api === "gemini" ? body.usageMetadata : body.usage) as Record<string, unknown>,
    );
  } else {
    const { usage, response: envelope } = accumulateStream(
      shape.api,
      shape.format === "sse" ? text : (JSON.parse(text) as unknown[]),
    );
    served.responseId = envelope[shape.api === "gemini" ? "responseId" : "id"];
    served.tokens = totalOf(shape.api, usage as Record<string, unknown>);
    if (shape.format === "sse") {
      const trailer = /^: latch event (\S+) (\S+)$/m.exec(text);
      served.eventId = trailer?.[1] ?? null;
      served.latchStatus = trailer?.[2];
    }
  }
  return served;
}

describe.each(DEPLOYMENTS)("a provider that reuses one response id, on $name", (deployment) => {
  const { nats } = deployment;
  const gw = useDeployment(deployment, "sameid");
  const { namespace } = gw;
  let provider: FakeProvider;
  let gateway: Gateway;

  beforeAll(async () => {
    // Each answer's usage still derives from its own request id: same id, different usage.
    provider = await startFakeProvider({
      responseId: (_requestId, derived) =>
        derived.startsWith("chatcmpl-")
          ? SAME_ID.openaiChat
          : derived.startsWith("msg_")
            ? SAME_ID.anthropic
            : SAME_ID.gemini,
    });
    gateway = await startGateway({ latch: gw.latch, providerUrl: provider.url });
  }, 120_000);

  afterAll(async () => {
    await gateway?.close();
    await provider?.close();
  }, 120_000);

  it("every call from two tenants is answered, stored once under its own event id with its own tokens and tenant, the provider's id kept as an attribute", async () => {
    const tenants = [`ta-${namespace}`, `tb-${namespace}`];
    for (const tenant of tenants) await gw.backends.quota.setLimit(tenant, 10_000_000);
    const served: Served[] = [];
    // Each shape twice per tenant, both tenants at once.
    for (let round = 0; round < 2; round++)
      for (const shape of SHAPES)
        served.push(...(await Promise.all(tenants.map((tenant) => call(gateway, tenant, shape)))));
    await gateway.settled();
    await gw.backends.ingestDrained();

    for (const s of served) {
      const what = `${s.tenant} ${s.shape}`;
      expect(s.status, `${what}: ${s.text.slice(0, 300)}`).toBe(200);
      expect(s.text, what).not.toMatch(/^\(cut/);
      // The provider did reuse its id, and answered each call its own usage.
      expect(s.responseId, what).toBe(SAME_ID[s.api]);
      expect(s.tokens, what).toBeGreaterThan(0);
      // A Gemini JSON array has no status line: nothing may be appended to it.
      if (s.format !== "array") expect(s.latchStatus, what).toBe(nats ? "accepted" : "rated");
    }
    expect(new Set(served.map((s) => s.tokens)).size, "the usages differ").toBeGreaterThan(1);
    expect(new Set(served.map((s) => s.eventId)).size, "one event id per call").toBe(served.length);

    for (const s of served) {
      const record = await until<RatedUsageRecord>(
        `${s.eventId} stored`,
        async () => (await gw.backends.rated.current(s.eventId as string)) ?? undefined,
      );
      const what = `${s.tenant} ${s.shape} ${s.eventId}`;
      expect(record.observation.subject.tenantId, what).toBe(s.tenant);
      expect(record.version, what).toBe(1);
      expect(record.observation.attributes, what).toEqual({ provider_response_id: SAME_ID[s.api] });
      const tokens = Object.entries(record.observation.meters)
        .filter(([meter]) => meter.endsWith("_tokens"))
        .reduce((sum, [, v]) => sum + (v ?? 0), 0);
      expect(tokens, what).toBe(s.tokens);
    }

    for (const tenant of tenants) {
      const mine = served.filter((s) => s.tenant === tenant);
      const servedTokens = mine.reduce((sum, s) => sum + s.tokens, 0);
      // Stored once each, nothing else: the tenant's records are exactly its calls.
      const page = await gw.latch.lines({
        start: "2000-01-01T00:00:00Z",
        end: "2100-01-01T00:00:00Z",
        filters: { tenantId: tenant },
        limit: 100,
      });
      expect(page.items.map((r) => r.observation.eventId).sort()).toEqual(mine.map((s) => s.eventId).sort());
      const [row] = (
        await gw.latch.summary({
          start: "2000-01-01T00:00:00Z",
          end: "2100-01-01T00:00:00Z",
          groupBy: ["tenantId"],
        })
      ).filter((r) => r.group.tenantId === tenant);
      expect(row?.requests).toBe(mine.length);
      expect(row?.totalTokens).toBe(servedTokens);
      // Charged what was stored: no call charged and lost.
      expect(await gw.backends.quota.balance(tenant)).toMatchObject({ held: 0, spent: servedTokens });
    }
    for (const s of served) {
      const what = `${s.tenant} ${s.shape}`;
      expect(s.eventId, what).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:(openai|anthropic|google)$/,
      );
      // Every answer names its event in a header, a stream too (the id is known before the
      // call); an SSE stream's last line names the same one.
      expect(s.headerEventId, what).toBe(s.eventId);
      // The non-streamed answers name the provider's id in a header too.
      expect(s.headerResponseId, what).toBe(s.format === "json" ? SAME_ID[s.api] : null);
    }
    console.log(
      `[same response id] ${deployment.short}: ${served.length} calls, ` +
        `${new Set(served.map((s) => s.eventId)).size} event ids, ${served.reduce((n, s) => n + s.tokens, 0)} tokens served and stored`,
    );
  }, 300_000);
});
