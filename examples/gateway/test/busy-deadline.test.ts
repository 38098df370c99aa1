/**
 * The provider's answer reached the gateway before its deadline, but the gateway's process was
 * busy (a starved machine, a long GC, a CPU-heavy neighbour on its event loop) until after the
 * deadline. Node runs timers that fell due during a stall before it reads the sockets, so a
 * plain timeout would answer 504 and void the call although the answer was sitting in the
 * socket. The gateway reads what arrived first: the call is a 200 and billed once, its hold settled.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type Gateway, startGateway } from "../src/gateway.js";

const TIMEOUT_MS = 1_000;

let dir: string;
let backends: GatewayBackends;
let latch: Latch;
let provider: http.Server;
let gateway: Gateway;

/** Blocks the whole process (the gateway's event loop with it) for `ms`. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: nothing else in this process runs
  }
}

/**
 * Answers at once, then stalls the process past the gateway's deadline: the answer is in the
 * gateway's socket before the deadline, read only after it.
 */
function answerThenStall(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const body = JSON.stringify({
        id: `chatcmpl-${req.headers["x-request-id"]}`,
        object: "chat.completion",
        model: "gpt-4o",
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body, () => stall(TIMEOUT_MS + 1_500));
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-busy-"));
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "busy" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  provider = answerThenStall();
  await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  gateway = await startGateway({ latch, providerUrl: url, providerTimeoutMs: TIMEOUT_MS });
  await latch.ready();
  await backends.quota.setLimit("acme", 1_000_000);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => provider?.close(resolve));
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("an answer that arrived before the deadline, read after it (a busy gateway)", () => {
  it("is served and billed, not a 504", { timeout: 30_000 }, async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-latch-tenant": "acme", "x-request-id": "busy-1" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 16 }),
    });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const eventId = response.headers.get("x-latch-event-id");
    expect(eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
    expect(response.headers.get("x-latch-provider-response-id")).toBe("chatcmpl-busy-1");
    const record = await backends.rated.current(eventId as string);
    expect(record?.observation.meters.output_tokens).toBe(3);
    expect(record?.observation.attributes).toEqual({ provider_response_id: "chatcmpl-busy-1" });
    await gateway.settled(); // the hold is settled after the response
    const balance = await backends.quota.balance("acme");
    expect(balance.held).toBe(0);
    expect(balance.spent).toBe(15);
  });
});
