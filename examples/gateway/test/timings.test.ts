/**
 * `onTimings`: once per request answered 200 (streamed or not), after its response left, with
 * the time of each phase; never for a refused or failed request; a hook that throws is logged
 * and the caller still gets its answer. Phases are checked from below only (a slow machine makes
 * every phase longer, never shorter): the provider holds its answer 60 ms, and reserve and record
 * are made to wait 30 and 40 ms.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "../src/config.js";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { type RequestTimings, startGateway } from "../src/gateway.js";

let dir: string;
let backends: GatewayBackends;
let latch: Latch;
let provider: FakeProvider;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-gateway-timings-"));
  backends = await openGatewayBackends({ exportDir: join(dir, "out"), namespace: "timings" });
  latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning: () => {} });
  await latch.ready();
  provider = await startFakeProvider({ fault: (id) => (id.startsWith("err-") ? "error" : undefined) });
  provider.setFirstByteDelay(60);
});

afterAll(async () => {
  await provider?.close();
  await latch?.close();
  await backends?.close();
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `latch` whose reserve waits 30 ms and record 40 ms before running. */
const slowLatch = (): Latch => ({
  ...latch,
  reserve: async (...args: Parameters<Latch["reserve"]>) => {
    await sleep(30);
    return latch.reserve(...args);
  },
  record: (async (...args: Parameters<Latch["record"]>) => {
    await sleep(40);
    return latch.record(...args);
  }) as Latch["record"],
});

const chat = (url: string, tenant: string, requestId: string, stream = false) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": requestId },
    body: JSON.stringify({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 32,
      stream,
    }),
  });

it("reports each answered request's phases, streamed or not; nothing for refused or failed ones", async () => {
  await backends.quota.setLimit("timed", 1_000_000);
  await backends.quota.setLimit("broke", 0);
  const seen: RequestTimings[] = [];
  const gateway = await startGateway({
    latch: slowLatch(),
    providerUrl: provider.url,
    onTimings: (t) => seen.push({ ...t }),
  });
  try {
    const plain = await chat(gateway.url, "timed", "plain-1");
    expect(plain.status).toBe(200);
    await plain.arrayBuffer();
    const streamed = await chat(gateway.url, "timed", "stream-1", true);
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain(": latch event ");
    await gateway.settled();
    expect(seen).toHaveLength(2);
    for (const t of seen) {
      expect(t.reserveMs).toBeGreaterThanOrEqual(25);
      expect(t.providerMs).toBeGreaterThanOrEqual(50);
      expect(t.recordMs).toBeGreaterThanOrEqual(35);
      expect(t.totalMs).toBeGreaterThanOrEqual(t.reserveMs + t.providerMs + t.recordMs);
    }

    const refused = await chat(gateway.url, "broke", "refused-1");
    expect(refused.status).toBe(429);
    await refused.arrayBuffer();
    const failed = await chat(gateway.url, "timed", "err-1");
    expect(failed.status).toBe(502);
    await failed.arrayBuffer();
    await gateway.settled();
    expect(seen).toHaveLength(2);
  } finally {
    await gateway.close();
  }
});

it("without Latch, reserve and record are 0; a hook that throws is logged and the caller is answered", async () => {
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const seen: RequestTimings[] = [];
  const bare = await startGateway({ providerUrl: provider.url, onTimings: (t) => seen.push({ ...t }) });
  const throwing = await startGateway({
    latch,
    providerUrl: provider.url,
    onTimings: () => {
      throw new Error("hook broke");
    },
  });
  try {
    const a = await chat(bare.url, "timed", "bare-1");
    expect(a.status).toBe(200);
    await a.arrayBuffer();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ reserveMs: 0, recordMs: 0 });
    expect(seen[0]?.providerMs).toBeGreaterThanOrEqual(50);

    const b = await chat(throwing.url, "timed", "throwing-1");
    expect(b.status).toBe(200);
    expect(b.headers.get("x-latch-status")).toBe("rated");
    await b.arrayBuffer();
    await throwing.settled();
    expect(logged).toHaveBeenCalledWith(
      "gateway: onTimings threw:",
      expect.objectContaining({ message: "hook broke" }),
    );
  } finally {
    logged.mockRestore();
    await bare.close();
    await throwing.close();
  }
});
