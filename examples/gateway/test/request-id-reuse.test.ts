/**
 * The caller controls `x-request-id`. Sending the same one again must not get a second call
 * through on the first call's hold: the quota is checked afresh for every request.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { type Gateway, reserveEstimate, startGateway } from "../src/gateway.js";

let dir: string;
let provider: FakeProvider;
let backends: GatewayBackends;
let latch: Latch;
let gateway: Gateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-reqid-"));
  provider = await startFakeProvider();
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "reqid" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  gateway = await startGateway({ latch, providerUrl: provider.url });
  await latch.ready();
});

afterAll(async () => {
  await gateway?.close();
  await provider?.close();
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

async function send(
  tenant: string,
  requestId: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": requestId },
    body: JSON.stringify(body),
  });
  // A response cut by the gateway still counts as served if any of it arrived.
  const text = await response.text().catch(() => "(cut)");
  return { status: response.status, text };
}

it("a request that reuses an earlier request's x-request-id is checked against the quota afresh (no second call on a spent hold)", async () => {
  const tenant = "reuse";
  const messages = [{ role: "user", content: "Summarise the quarterly report. ".repeat(10) }];
  const body = { model: "gpt-4o", messages, max_tokens: 64, stream: true };
  // Room for exactly one call's hold.
  await backends.quota.setLimit(tenant, reserveEstimate(messages, 64));
  const first = await send(tenant, "req-1", body);
  expect(first.status).toBe(200);
  await gateway.settled(); // the hold is settled after the response
  const spent = (await backends.quota.balance(tenant)).spent;
  expect(spent).toBeGreaterThan(0);
  // A fresh request id is refused: the quota has no room for another hold.
  expect((await send(tenant, "req-2", body)).status).toBe(429);
  // The same request id again must be refused too.
  expect((await send(tenant, "req-1", body)).status).toBe(429);
  await gateway.settled();
  expect((await backends.quota.balance(tenant)).spent).toBe(spent);
});

it("a provider answer without an id is billed under an id of the gateway's: two tenants sending the same x-request-id are both billed", async () => {
  // A provider (an OpenAI-compatible server) whose answers carry no id.
  const bare = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const body = JSON.stringify({
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42 },
      });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
  const port = (bare.address() as AddressInfo).port;
  const own = await startGateway({ latch, providerUrl: `http://127.0.0.1:${port}` });
  try {
    const body = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 8 };
    const ids: string[] = [];
    for (const tenant of ["bare-a", "bare-b"]) {
      await backends.quota.setLimit(tenant, 1_000);
      const response = await fetch(`${own.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": "same" },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-latch-status")).toBe("rated");
      ids.push(response.headers.get("x-latch-event-id") as string);
      expect(response.headers.get("x-latch-provider-response-id")).toBeNull();
      await response.arrayBuffer();
      await own.settled(); // the hold is settled after the response
      expect((await backends.quota.balance(tenant)).spent).toBe(42);
    }
    expect(new Set(ids).size).toBe(2);
    for (const [i, eventId] of ids.entries()) {
      expect(eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
      // No provider id: no attribute, no header.
      const record = await backends.rated.current(eventId);
      expect(record?.observation.subject.tenantId).toBe(["bare-a", "bare-b"][i]);
      expect(record?.observation.attributes).toBeUndefined();
    }
  } finally {
    await own.close();
    await new Promise((resolve) => bare.close(resolve));
  }
});
