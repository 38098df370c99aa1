// A billing app on @hono/node-server in its own process, for body-limit.test.ts: the test
// measures this process's memory while it streams a huge body at it. Prints one JSON line
// `{ port, key }` on start; answers the IPC message "memory" with its baseline and peak
// rss / heapUsed (sampled every 10 ms) since the message "baseline".
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { ApiKeys, MemoryApiKeyStore, MemoryRatedRecordStore } from "@latch/core";
import { createBillingApp } from "@latch/http";

const keys = new ApiKeys({
  store: new MemoryApiKeyStore(),
  secret: "body-limit-secret-body-limit-secret-0123",
});
const { plaintext } = await keys.create({ owner: { tenantId: "t" }, name: "writer", scopes: ["keys:write"] });
const app = createBillingApp({ keys, records: new MemoryRatedRecordStore() });

let baseline = process.memoryUsage();
let peak = { rss: baseline.rss, heapUsed: baseline.heapUsed };
setInterval(() => {
  const now = process.memoryUsage();
  peak = { rss: Math.max(peak.rss, now.rss), heapUsed: Math.max(peak.heapUsed, now.heapUsed) };
}, 10);

process.on("message", (message) => {
  if (message === "baseline") {
    (globalThis as { gc?: () => void }).gc?.();
    baseline = process.memoryUsage();
    peak = { rss: baseline.rss, heapUsed: baseline.heapUsed };
    process.send?.({ ok: true });
  } else if (message === "memory") {
    process.send?.({ baseline: { rss: baseline.rss, heapUsed: baseline.heapUsed }, peak });
  }
});

serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
  process.send?.({ port: info.port, key: plaintext });
});
