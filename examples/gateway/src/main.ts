/**
 * The gateway example: `pnpm --filter @latch/example-gateway start`.
 *
 * Starts the fake provider and the gateway, sends a few hundred requests of every shape
 * (OpenAI, Anthropic, Gemini; streamed and not) from three tenants — one with a small quota —
 * then re-rates, exports, prints what was billed, and exits. With `-- --serve` it keeps
 * serving on PORT (default 8787) for your own curl requests instead of exiting.
 *
 * The backends come from the environment alone (see config.ts): nothing set = the embedded
 * default; LATCH_DATABASE_URL = Postgres; plus LATCH_REDIS_URL and LATCH_S3_BUCKET
 * (LATCH_S3_ENDPOINT for MinIO & co.) = Postgres + Redis + S3; LATCH_NATS_URL on top of any
 * of them = the fleet deployment (record() publishes to NATS JetStream, ingest workers store).
 * In serve mode a reconcile loop commits the holds whose settle was lost (reconcile-loop.ts),
 * at start and every LATCH_RECONCILE_EVERY_MS (default 60,000).
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { configFromEnv, createGatewayLatch, openGatewayBackends } from "./config.js";
import { startFakeProvider } from "./fake-provider.js";
import { startGateway } from "./gateway.js";
import { startReconcileLoop } from "./reconcile-loop.js";
import { driveTraffic } from "./traffic.js";

const serve = process.argv.includes("--serve");
const cwd = process.env.INIT_CWD ?? process.cwd();
const config = configFromEnv(process.env);
config.exportDir = resolve(cwd, config.exportDir ?? "latch-out/gateway");
// The demo starts its stores from nothing (memory, or a wiped schema and key prefix), so its
// change log starts again at 1: start the export from nothing too — a fresh folder, or a fresh
// S3 prefix per run — or the new batches would collide with the last run's objects.
await rm(resolve(config.exportDir, "latch.billing-export.v1"), { recursive: true, force: true });
if (config.s3 && !process.env.LATCH_S3_PREFIX) {
  config.s3.prefix = `gateway-demo/${new Date().toISOString().replace(/[:.]/g, "-")}`;
}

const provider = await startFakeProvider();
const backends = await openGatewayBackends(config);
const latch = createGatewayLatch(backends, { spoolPath: resolve(cwd, ".latch/gateway-spool.jsonl") });
await latch.ready();
const tenants = { acme: 5_000_000, globex: 5_000_000, initech: 40_000 };
for (const [tenant, limit] of Object.entries(tenants)) await backends.quota.setLimit(tenant, limit);
const gateway = await startGateway(
  { latch, providerUrl: provider.url },
  serve ? Number(process.env.PORT ?? 8787) : 0,
);

console.log(`Latch gateway on ${gateway.url} → fake provider ${provider.url}`);
console.log(`Backends: ${backends.description}`);

if (serve) {
  console.log(`\nTry:\n  curl -s ${gateway.url}/v1/chat/completions -H 'x-latch-tenant: acme' \\
    -H 'content-type: application/json' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' -i`);
  // Holds whose settle failed (quota store away) or never ran (the process died between record
  // and settle): committed from their records, at start and then periodically.
  const reconcile = startReconcileLoop(
    latch,
    config.reconcileEveryMs !== undefined ? { everyMs: config.reconcileEveryMs } : {},
  );
  const stop = async () => {
    await gateway.close();
    await reconcile.stop();
    await latch.close();
    await backends.close();
    await provider.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} else {
  const results = await driveTraffic({
    gatewayUrl: gateway.url,
    requests: Number(process.env.LATCH_REQUESTS ?? 600),
    concurrency: 16,
    tenants: Object.keys(tenants),
    runId: randomUUID().slice(0, 8),
  });
  const byStatus = new Map<number, number>();
  for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
  console.log(
    `\n${results.length} requests: ${[...byStatus].map(([status, n]) => `${n} × HTTP ${status}`).join(", ")}` +
      " (429 = quota exceeded: initech's limit is small)",
  );
  // Holds are settled just after their responses: wait for the last settles.
  await gateway.settled();
  // On the JetStream deployment the calls are stored by the ingest workers: wait for them.
  await backends.ingestDrained();
  const exported = await latch.exportPending();
  const summary = await latch.summary({
    start: "2000-01-01T00:00:00Z",
    end: "2100-01-01T00:00:00Z",
    groupBy: ["tenantId", "model"],
  });
  console.log("\ntenant    model               requests   tokens   cost");
  for (const row of summary) {
    const cost = Object.entries(row.costByCurrency)
      .map(([c, v]) => `${v} ${c}`)
      .join(", ");
    console.log(
      `${String(row.group.tenantId).padEnd(9)} ${String(row.group.model).padEnd(18)} ${String(row.requests).padStart(8)} ${String(row.totalTokens).padStart(8)}   ${cost}`,
    );
  }
  for (const tenant of Object.keys(tenants)) {
    const b = await backends.quota.balance(tenant);
    console.log(`quota ${tenant}: spent ${b.spent} of ${b.limit}, held ${b.held}`);
  }
  console.log(
    `\nExported ${exported.rows} rated records in ${exported.batches} batch(es) (${backends.description}).`,
  );
  await gateway.close();
  await latch.close();
  await backends.close();
  await provider.close();
}
