/**
 * A client that stops reading a streamed answer must not make the gateway buffer the rest of
 * it: the relay waits for the client (backpressure), so the provider is read no faster than
 * the client reads.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type Gateway, startGateway } from "../src/gateway.js";

const MIB = 1024 * 1024;
const ANSWER_BYTES = 128 * MIB;

let dir: string;
let backends: GatewayBackends;
let latch: Latch;
let provider: http.Server;
let gateway: Gateway;

/** An SSE answer of ANSWER_BYTES in small content events, sent as fast as it is read, then usage. */
function fastProvider(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on("end", async () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const event = Buffer.from(`data: {"choices":[{"delta":{"content":"${"x".repeat(4000)}"}}]}\n\n`);
      const batch = Buffer.concat(Array.from({ length: 16 }, () => event));
      for (let sent = 0; sent < ANSWER_BYTES; sent += batch.length) {
        if (!res.write(batch)) await new Promise((r) => res.once("drain", r));
      }
      res.end(
        'data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}\n\ndata: [DONE]\n\n',
      );
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-slow-client-"));
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "slowclient" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  provider = fastProvider();
  await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  gateway = await startGateway({ latch, providerUrl: url, providerTimeoutMs: 30_000 });
  await latch.ready();
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => provider?.close(resolve));
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

const buffered = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

it(
  "a client that pauses for 3 s mid-stream: the gateway holds far less than the answer, and the client then gets all of it",
  { timeout: 120_000 },
  async () => {
    const tenant = "slow-client";
    await backends.quota.setLimit(tenant, 10_000_000);
    const before = buffered();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, buffered());
    }, 20);
    try {
      const received = await new Promise<number>((resolve, reject) => {
        const payload = JSON.stringify({
          model: "gpt-4o",
          messages: [{ role: "user", content: "hi" }],
          stream: true,
        });
        const req = http.request(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-latch-tenant": tenant },
        });
        req.on("response", (res) => {
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on("end", () => resolve(bytes));
          res.on("error", reject);
          // Read a little, then stop reading for 3 s.
          res.once("data", () => {
            res.pause();
            setTimeout(() => res.resume(), 3_000);
          });
        });
        req.on("error", reject);
        req.end(payload);
      });
      expect(received).toBeGreaterThan(ANSWER_BYTES);
    } finally {
      clearInterval(sampler);
    }
    // Garbage of the relayed chunks alone comes to ~50 MB here; buffering the answer came to ~300 MB.
    expect(peak - before).toBeLessThan(ANSWER_BYTES / 2);
    await gateway.settled(); // the hold is settled after the response
    const balance = await backends.quota.balance(tenant);
    expect(balance).toMatchObject({ held: 0, spent: 15 });
  },
);

it(
  "a client that stops reading for longer than the idle timeout: the gateway stops the provider, settles the hold and bills what it relayed",
  { timeout: 120_000 },
  async () => {
    const tenant = "stalled-client";
    await backends.quota.setLimit(tenant, 10_000_000);
    const own = await startGateway({
      latch,
      providerUrl: `http://127.0.0.1:${(provider.address() as AddressInfo).port}`,
      providerIdleTimeoutMs: 1_000,
    });
    const req = http.request(`${own.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-latch-tenant": tenant },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        req.on("response", (res) => {
          res.once("data", () => {
            res.pause(); // and never reads again
            resolve();
          });
        });
        req.on("error", reject);
        req.end(
          JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }),
        );
      });
      const until = Date.now() + 60_000;
      for (;;) {
        const balance = await backends.quota.balance(tenant);
        if (balance.held === 0 && balance.spent > 0) break;
        if (Date.now() > until) throw new Error(`hold still open: ${JSON.stringify(balance)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      req.destroy();
      await own.close();
    }
  },
);
