/**
 * The hold's settle (commit or void) changes nothing in the response, so the gateway settles it
 * after the response is handed to the socket: the caller does not wait for it. Nothing may be
 * lost: every hold is settled exactly once on every path (served, provider error, provider
 * timeout), a settle that fails is logged (never an unhandled rejection), and `settled()` and
 * `close()` wait for the settles in flight. Also the fake provider's first-byte delay (the
 * benchmark's delayed rounds) holds its answer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hold, Latch, RecordResult } from "@latch/core";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { startGateway } from "../src/gateway.js";

let dir: string;
let backends: GatewayBackends;
let latch: Latch;
let provider: FakeProvider;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-settle-"));
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "settle" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  await latch.ready();
  provider = await startFakeProvider({
    fault: (id) => (id.startsWith("err-") ? "error" : id.startsWith("slow-") ? "slow" : undefined),
  });
});

afterAll(async () => {
  await provider?.close();
  await latch?.close();
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A gate: `open()` resolves `wait`. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** `latch` whose settles are recorded and wait for `until` before they run. */
function gatedLatch(until: Promise<void>) {
  const settles: Array<{ holdId: string; status: string; done: boolean }> = [];
  const wrapped: Latch = {
    ...latch,
    async settle(hold: Hold, result: RecordResult | { status: "failed" }) {
      const entry = { holdId: hold.holdId, status: result.status, done: false };
      settles.push(entry);
      await until;
      const settled = await latch.settle(hold, result);
      entry.done = true;
      return settled;
    },
  };
  return { wrapped, settles };
}

const chat = (gatewayUrl: string, tenant: string, requestId: string) =>
  fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": requestId },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 32 }),
  });

it("answers before the settle runs; settled() and close() wait for it; each hold settled once on every path", async () => {
  const tenant = "settle-paths";
  await backends.quota.setLimit(tenant, 1_000_000);
  const settle = gate();
  const { wrapped, settles } = gatedLatch(settle.wait);
  // A 3 s deadline (as the e2e test): served answers come well before it on a loaded machine (with
  // 500 ms, a slow first byte made ok-1 a 504), and the late answer (8 s) well after it.
  const gateway = await startGateway({ latch: wrapped, providerUrl: provider.url, providerTimeoutMs: 3_000 });
  let closed = false;
  try {
    // Served, and a provider error: both answered while their settles are still waiting.
    const ok = await chat(gateway.url, tenant, "ok-1");
    expect(ok.status).toBe(200);
    const okEventId = ok.headers.get("x-latch-event-id") as string;
    expect(okEventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:0:openai$/);
    expect(ok.headers.get("x-latch-status")).toBe("rated");
    await ok.arrayBuffer();
    const failed = await chat(gateway.url, tenant, "err-1");
    expect(failed.status).toBe(502);
    await failed.arrayBuffer();
    // A provider that answers after the gateway's deadline: a 504.
    provider.setFirstByteDelay(8_000);
    const late = await chat(gateway.url, tenant, "late-1");
    provider.setFirstByteDelay(0);
    expect(late.status).toBe(504);
    await late.arrayBuffer();

    expect(settles.map((s) => [s.status, s.done])).toEqual([
      ["rated", false],
      ["failed", false],
      ["failed", false],
    ]);
    expect(new Set(settles.map((s) => s.holdId)).size).toBe(3);
    // The holds are still open while their settles wait.
    expect((await backends.quota.balance(tenant)).held).toBeGreaterThan(0);

    let waited = false;
    const idle = gateway.settled().then(() => {
      waited = true;
    });
    const closing = gateway.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(waited).toBe(false);
    expect(closed).toBe(false);
    settle.open();
    await idle;
    await closing;
    expect(settles.every((s) => s.done)).toBe(true);
    expect(settles).toHaveLength(3); // once each, nothing settled twice
    const balance = await backends.quota.balance(tenant);
    expect(balance.held).toBe(0);
    const served = await backends.rated.current(okEventId);
    expect(served?.observation.attributes).toEqual({ provider_response_id: "chatcmpl-ok-1" });
    expect(balance.spent).toBe(
      (served?.observation.meters.input_tokens ?? 0) + (served?.observation.meters.output_tokens ?? 0),
    );
  } finally {
    settle.open();
    if (!closed) await gateway.close();
  }
});

it("a settle that throws is logged, never an unhandled rejection, and the response is unchanged", async () => {
  const tenant = "settle-throws";
  await backends.quota.setLimit(tenant, 1_000_000);
  const thrown = new Error("settle refused");
  const throwing: Latch = {
    ...latch,
    settle: async () => {
      throw thrown;
    },
  };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const gateway = await startGateway({ latch: throwing, providerUrl: provider.url });
  try {
    const response = await chat(gateway.url, tenant, "throws-1");
    expect(response.status).toBe(200);
    expect(response.headers.get("x-latch-status")).toBe("rated");
    await response.arrayBuffer();
    await gateway.settled();
    await gateway.close();
    // One more turn, for any rejection left unhandled to be reported.
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
    expect(logged).toHaveBeenCalledTimes(1);
    expect(String(logged.mock.calls[0]?.[0])).toMatch(/^gateway: settling hold \S+ failed:$/);
    expect(logged.mock.calls[0]?.[1]).toBe(thrown);
  } finally {
    logged.mockRestore();
    process.off("unhandledRejection", onUnhandled);
  }
});

it("a client that hangs up mid-stream: settled() waits for its hold, still being handled when the client saw the end", async () => {
  const tenant = "settle-hangup";
  await backends.quota.setLimit(tenant, 1_000_000);
  const open = gate();
  open.open();
  const { wrapped, settles } = gatedLatch(open.wait);
  const gateway = await startGateway({ latch: wrapped, providerUrl: provider.url });
  try {
    // The provider streams an event every 100 ms; the client hangs up at the first bytes.
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-latch-tenant": tenant,
          "x-request-id": "slow-hangup-1",
        },
      });
      req.on("response", (res) => {
        res.once("data", () => req.destroy());
        res.on("close", () => resolve());
      });
      req.on("error", () => resolve());
      req.on("timeout", () => reject(new Error("no answer")));
      req.end(
        JSON.stringify({
          model: "gpt-4o",
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 200,
          stream: true,
        }),
      );
    });
    // The gateway learns of the hang-up, stops the provider, records what it served, then settles.
    await gateway.settled();
    expect(settles.map((s) => [s.status, s.done])).toEqual([["rated", true]]);
    const balance = await backends.quota.balance(tenant);
    expect(balance.held).toBe(0);
    expect(balance.spent).toBeGreaterThan(0);
  } finally {
    await gateway.close();
  }
});
