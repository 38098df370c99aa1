/// <reference path="../../../packages/s3/test/support/s3rver.d.ts" />
/**
 * End to end: 10,000 requests through the gateway (OpenAI, Anthropic, Gemini; streamed and
 * not; five tenants, two with small quotas) while faults happen — the provider fails 3% of
 * requests and never answers 1% (the gateway times out), the store's database connections are
 * killed mid-run (Postgres), the exporter crashes mid-export — then checks that:
 *
 * - every successful call has exactly one current rated record, and nothing else was billed;
 * - no tenant's quota was exceeded (spent ≤ limit, spent = the tokens billed);
 * - exported rows = rated-record versions, each exactly once;
 * - per-tenant totals in the export equal the store's summary to the last digit.
 *
 * On Postgres + Redis + S3 (the real servers at DATABASE_URL and REDIS_URL, an in-process S3
 * emulator), on the same with NATS JetStream in front of the stores (NATS_URL: record()
 * publishes, two ingest workers store; the killed connections hit the workers, whose messages
 * are redelivered), and on the embedded default (in-memory stores, file export).
 */
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import * as nodeFs from "node:fs/promises";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { FileExporter, sumDecimals } from "@latch/core";
import type { RatedRecordExporter, RatedRecordStore } from "@latch/core/adapter";
import { exportPending } from "@latch/core/export";
import { S3Exporter } from "@latch/s3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpProxy } from "../../../packages/nats/test/support/tcp-proxy.js";
import { startTestS3, type TestS3 } from "../../../packages/s3/test/support/s3-server.js";
import { createGatewayLatch, type GatewayConfig, openGatewayBackends } from "../src/config.js";
import { type ProviderFault, startFakeProvider } from "../src/fake-provider.js";
import { startGateway } from "../src/gateway.js";
import { driveTraffic, type TrafficResult } from "../src/traffic.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const here = dirname(fileURLToPath(import.meta.url));
const INGEST_BIN = join(here, "..", "..", "..", "packages", "nats", "src", "bin.ts");
const WORKER_CONFIG = join(here, "support", "ingest-worker.config.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const REQUESTS = 10_000;
const LIMITS: Record<string, number> = {
  acme: 50_000_000,
  globex: 50_000_000,
  hooli: 50_000_000,
  initech: 150_000, // runs out early: 429s
  umbrella: 400_000, // runs out later
};

/** 3% provider errors, 1% provider timeouts, chosen by the request id (deterministic). */
function providerFault(requestId: string): ProviderFault {
  const n = createHash("sha256").update(requestId).digest().readUInt16BE(0) % 100;
  return n < 3 ? "error" : n < 4 ? "timeout" : undefined;
}

/** An independent reader of the export: keys and bytes, from a folder or a bucket. */
interface ExportReader {
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Uint8Array>;
}

async function readExport(reader: ExportReader, prefix: string) {
  const rows: Array<{ rated_record_id: string; event_id: string; tenant_id: string; cost_delta: string }> =
    [];
  const manifests = (await reader.list(`${prefix}latch.billing-export.v1/_manifests/`)).filter((k) =>
    k.endsWith(".json"),
  );
  for (const key of manifests) {
    const manifest = JSON.parse(Buffer.from(await reader.get(key)).toString("utf8")) as {
      objects: Array<{ key: string; format: string; rows: number }>;
    };
    for (const object of manifest.objects.filter((o) => o.format === "jsonl.gz")) {
      const lines = gunzipSync(await reader.get(object.key))
        .toString("utf8")
        .split("\n")
        .filter((l) => l !== "");
      expect(lines.length).toBe(object.rows);
      for (const line of lines) rows.push(JSON.parse(line));
    }
  }
  return rows;
}

async function allVersions(store: RatedRecordStore) {
  const out = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.listSince(cursor, 10_000);
    if (page.items.length === 0) return out;
    out.push(...page.items.map((e) => e.record));
    cursor = page.cursor;
  }
}

interface Scenario {
  name: string;
  config: (dir: string) => Promise<GatewayConfig>;
  /** Kills the store's connections while traffic flows (where there is a server to do it to). */
  dropConnections?: (namespace: string) => Promise<number>;
  /**
   * Faults of the JetStream deployment, run while traffic flows: an ingest worker process
   * killed mid-batch, the log's server taken away and brought back.
   */
  fleetFaults?: (namespace: string) => Promise<void>;
  /** An exporter over the same destination that "dies" after `n` objects are written. */
  crashingExporter: (
    config: GatewayConfig,
    n: number,
    crash: AbortController,
  ) => { exporter: RatedRecordExporter; crashed: () => boolean };
  reader: (config: GatewayConfig) => ExportReader;
  prefix: (config: GatewayConfig) => string;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "latch-gateway-e2e-"));
  const namespace = `latch_gw_${randomUUID().slice(0, 8)}`;
  const config = { ...(await scenario.config(dir)), namespace, dropOnClose: true, poolSize: 8 };
  const provider = await startFakeProvider({ fault: providerFault });
  const backends = await openGatewayBackends(config);
  const warnings: string[] = [];
  const latch = createGatewayLatch(backends, {
    spoolPath: join(dir, "spool.jsonl"),
    onWarning: (w) => warnings.push(w.code),
  });
  const gateway = await startGateway({ latch, providerUrl: provider.url, providerTimeoutMs: 3_000 });
  try {
    await latch.ready();
    for (const [tenant, limit] of Object.entries(LIMITS)) await backends.quota.setLimit(tenant, limit);

    // Traffic, with the store's connections killed twice while it flows.
    let killed = 0;
    const traffic = driveTraffic({
      gatewayUrl: gateway.url,
      requests: REQUESTS,
      concurrency: 32,
      tenants: Object.keys(LIMITS),
      runId: namespace,
    });
    const outage = scenario.fleetFaults?.(namespace);
    if (scenario.dropConnections) {
      for (const delayMs of [1_500, 4_000]) {
        await new Promise((r) => setTimeout(r, delayMs));
        killed += await scenario.dropConnections(namespace);
      }
    }
    await outage;
    const results: TrafficResult[] = await traffic;
    // Whatever went to the local spool while the store (or the log) was unreachable goes in
    // now; a client still reconnecting to NATS leaves it spooled, so try again for a while.
    let flushed = await latch.flushSpool();
    let replayed = flushed.replayed;
    for (let i = 0; i < 60 && flushed.remaining > 0; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      flushed = await latch.flushSpool();
      replayed += flushed.replayed;
    }
    expect(flushed.remaining).toBe(0);
    if (scenario.fleetFaults) expect(replayed).toBeGreaterThan(0);
    // On the JetStream deployment the ingest workers store the calls: wait until they all are.
    await backends.ingestDrained(300_000);

    const ok = results.filter((r) => r.status === 200);
    const byStatus = new Map<number, number>();
    for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    console.log(
      `[gateway e2e: ${scenario.name}] ${REQUESTS} requests: ${[...byStatus].map(([s, n]) => `${n}×${s}`).join(" ")}; ` +
        `provider errors ${provider.counts.error}, timeouts ${provider.counts.timeout}; ` +
        `store connections killed ${killed}; spool replayed ${replayed}; warnings ${warnings.length}`,
    );
    expect(results).toHaveLength(REQUESTS);
    expect(byStatus.get(502)).toBe(provider.counts.error);
    expect(byStatus.get(504)).toBe(provider.counts.timeout);
    expect(byStatus.get(429) ?? 0).toBeGreaterThan(0);
    // 503: the quota store did not answer in time (a starved machine), so the call was denied —
    // quota fails closed; such a call is never billed, which the checks below hold it to.
    expect(
      ok.length +
        (byStatus.get(429) ?? 0) +
        (byStatus.get(503) ?? 0) +
        provider.counts.error +
        provider.counts.timeout,
    ).toBe(REQUESTS);
    if (scenario.dropConnections) expect(killed).toBeGreaterThan(0);

    // Every successful call has exactly one current rated record, and nothing else is billed.
    const versions = await allVersions(backends.rated);
    const billed = new Map<string, number>();
    for (const v of versions) billed.set(v.eventId, (billed.get(v.eventId) ?? 0) + 1);
    expect(ok.every((r) => r.eventId !== undefined)).toBe(true);
    const okIds = new Set(ok.map((r) => r.eventId as string));
    expect(okIds.size).toBe(ok.length);
    expect([...billed.keys()].sort()).toEqual([...okIds].sort());
    expect([...billed.values()].every((n) => n === 1)).toBe(true);
    for (const r of ok.slice(0, 200)) expect(await backends.rated.current(r.eventId as string)).toBeDefined();

    // No tenant's quota was exceeded, and what was charged is what was billed.
    const tokensByTenant = new Map<string, number>();
    for (const v of versions) {
      const m = v.observation.meters;
      const tokens =
        (m.input_tokens ?? 0) +
        (m.cached_input_tokens ?? 0) +
        (m.cache_write_tokens ?? 0) +
        (m.output_tokens ?? 0);
      const tenant = v.observation.subject.tenantId;
      tokensByTenant.set(tenant, (tokensByTenant.get(tenant) ?? 0) + tokens);
    }
    for (const [tenant, limit] of Object.entries(LIMITS)) {
      const balance = await backends.quota.balance(tenant);
      expect(balance.held, `${tenant} holds`).toBe(0);
      expect(balance.spent, `${tenant} spent ≤ limit`).toBeLessThanOrEqual(limit);
      expect(balance.spent, `${tenant} spent = tokens billed`).toBe(tokensByTenant.get(tenant) ?? 0);
    }

    // Export, with a crash after a few objects, then the real run finishes it.
    const crash = new AbortController();
    const crashing = scenario.crashingExporter(config, 5, crash);
    await expect(
      exportPending({
        store: backends.rated,
        exporter: crashing.exporter,
        batchSize: 1_000,
        signal: crash.signal,
      }),
    ).rejects.toThrow(/injected crash/);
    expect(crashing.crashed()).toBe(true);
    const exported = await latch.exportPending();
    expect(exported.rows).toBeGreaterThan(0);

    const rows = await readExport(scenario.reader(config), scenario.prefix(config));
    expect(rows.length).toBe(versions.length);
    expect(new Set(rows.map((r) => r.rated_record_id)).size).toBe(rows.length);

    // Per-tenant totals in the export = the store's summary, to the last digit.
    const summary = await latch.summary({
      start: "2000-01-01T00:00:00Z",
      end: "2100-01-01T00:00:00Z",
      groupBy: ["tenantId"],
    });
    const fromStore = Object.fromEntries(summary.map((s) => [s.group.tenantId, s.costByCurrency.USD]));
    const fromExport: Record<string, string> = {};
    for (const tenant of new Set(rows.map((r) => r.tenant_id))) {
      fromExport[tenant] = sumDecimals(rows.filter((r) => r.tenant_id === tenant).map((r) => r.cost_delta));
    }
    expect(fromExport).toEqual(fromStore);
    expect(Object.keys(fromStore).sort()).toEqual(Object.keys(LIMITS).sort());
  } finally {
    await gateway.close();
    await latch.close();
    await backends.close();
    await provider.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Makes an S3 client "die" right after its n-th PutObject (the object is stored): the run is
 * aborted there, as if the process had stopped.
 */
function crashAfterPuts(client: S3Client, n: number, crash: AbortController): () => boolean {
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  let puts = 0;
  (client as unknown as { send: typeof send }).send = async (command, options) => {
    const out = await send(command, options);
    if (command instanceof PutObjectCommand && ++puts === n) {
      crash.abort(new Error("injected crash"));
      throw crash.signal.reason;
    }
    return out;
  };
  return () => puts >= n;
}

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
});

describe("gateway end to end, 10,000 requests with faults", () => {
  it("on Postgres + Redis + S3", { timeout: 900_000 }, () => onPostgresRedisS3());

  it(
    "on Postgres + Redis + S3 with NATS JetStream in front of the stores, a worker killed mid-run and NATS lost",
    { timeout: 900_000 },
    async () => {
      // The gateway and its in-process workers reach NATS through a proxy the test takes down
      // for 3 s mid-run: to them the server went away and came back (the shared server itself
      // is left alone). A third worker, a `latch-ingest` process, is SIGKILLed mid-run: the
      // messages it held unacknowledged are redelivered to the others after the ack wait.
      const target = new URL(NATS_URL);
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 4222));
      const stream = `T_gateway_${randomUUID().slice(0, 8)}`;
      try {
        await onPostgresRedisS3({ url: proxy.url, stream, workers: 2 }, async (namespace) => {
          const worker = spawn(
            process.execPath,
            ["--conditions=dev-source", "--import", TSX, INGEST_BIN, "--config", WORKER_CONFIG],
            {
              env: {
                ...process.env,
                NODE_OPTIONS: undefined,
                NATS_URL,
                LATCH_INGEST_STREAM: stream,
                LATCH_E2E_SCHEMA: namespace,
              },
              stdio: ["ignore", "pipe", "pipe"],
            },
          );
          let output = "";
          worker.stdout.setEncoding("utf8").on("data", (d: string) => {
            output += d;
          });
          worker.stderr.setEncoding("utf8").on("data", (d: string) => {
            output += d;
          });
          const exited = new Promise<NodeJS.Signals | null>((resolve) =>
            worker.on("close", (_code, signal) => resolve(signal)),
          );
          for (let i = 0; i < 600 && !output.includes(`consuming ${stream}`); i++)
            await new Promise((r) => setTimeout(r, 100));
          await new Promise((r) => setTimeout(r, 1_000));
          await proxy.down();
          await new Promise((r) => setTimeout(r, 3_000));
          await proxy.up();
          await new Promise((r) => setTimeout(r, 2_000));
          expect(output, "the worker process is consuming").toContain(`consuming ${stream}`);
          worker.kill("SIGKILL");
          expect(await exited).toBe("SIGKILL");
        });
      } finally {
        await proxy.close();
      }
    },
  );

  async function onPostgresRedisS3(
    nats?: GatewayConfig["nats"],
    fleetFaults?: (namespace: string) => Promise<void>,
  ) {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    try {
      await runScenario({
        name: nats ? "Postgres + Redis + S3 + JetStream" : "Postgres + Redis + S3",
        ...(fleetFaults ? { fleetFaults } : {}),
        config: async () => ({
          ...(nats ? { nats } : {}),
          databaseUrl: `${DATABASE_URL}${DATABASE_URL.includes("?") ? "&" : "?"}application_name=latch-gateway-e2e`,
          redisUrl: REDIS_URL,
          s3: {
            bucket: await s3.createBucket(),
            endpoint: s3.endpoint,
            forcePathStyle: true,
            prefix: "billing",
            credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
          },
        }),
        dropConnections: async () => {
          const r = await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'latch-gateway-e2e' AND pid <> pg_backend_pid()",
          );
          return r.rowCount ?? 0;
        },
        crashingExporter: (config, n, crash) => {
          const client = s3.client();
          const crashed = crashAfterPuts(client, n, crash);
          const c = config.s3 as NonNullable<GatewayConfig["s3"]>;
          return {
            exporter: new S3Exporter({
              bucket: c.bucket,
              prefix: c.prefix,
              client,
              formats: ["jsonl.gz", "parquet"],
            }),
            crashed,
          };
        },
        reader: (config) => ({
          list: (prefix) => s3.list((config.s3 as { bucket: string }).bucket, prefix),
          get: async (key) => {
            const bytes = await s3.get((config.s3 as { bucket: string }).bucket, key);
            if (bytes === undefined) throw new Error(`${key} is missing`);
            return bytes;
          },
        }),
        prefix: () => "billing/",
      });
    } finally {
      await admin.end();
    }
  }

  it("on the embedded default", { timeout: 900_000 }, async () => {
    await runScenario({
      name: "embedded default",
      config: async (dir) => ({ exportDir: join(dir, "export") }),
      crashingExporter: (config, n, crash) => {
        let links = 0;
        const fs = {
          ...nodeFs,
          link: async (...args: Parameters<typeof nodeFs.link>) => {
            await nodeFs.link(...args);
            if (++links === n) {
              crash.abort(new Error("injected crash"));
              throw crash.signal.reason;
            }
          },
        };
        return {
          exporter: new FileExporter({
            directory: config.exportDir as string,
            formats: ["jsonl.gz", "csv"],
            fs,
          }),
          crashed: () => links >= n,
        };
      },
      reader: (config) => ({
        list: async (prefix) => {
          const root = config.exportDir as string;
          const files = await readdir(join(root, prefix), { recursive: true }).catch(() => []);
          return files.map((f) => relative(root, join(root, prefix, String(f)))).sort();
        },
        get: async (key) => readFile(join(config.exportDir as string, key)),
      }),
      prefix: () => "",
    });
  });
});
