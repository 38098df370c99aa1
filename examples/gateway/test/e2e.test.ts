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
 * emulator), on the same with NATS JetStream in front of the stores (a nats-server of the test's
 * own: record() publishes, two ingest workers in process and a `latch-ingest` process store; the
 * killed connections hit the workers, whose messages are redelivered; the worker process is
 * SIGKILLed holding unacknowledged messages and the NATS server is SIGKILLed and restarted on
 * its store mid-run), and on the embedded default (in-memory stores, file export).
 */
import { type ChildProcess, spawn } from "node:child_process";
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
import { ingestLag } from "@latch/nats";
import { S3Exporter } from "@latch/s3";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../../../packages/nats/test/support/nats-server.js";
import { startTestS3, type TestS3 } from "../../../packages/s3/test/support/s3-server.js";
import { createGatewayLatch, type GatewayConfig, openGatewayBackends } from "../src/config.js";
import { type ProviderFault, startFakeProvider } from "../src/fake-provider.js";
import { startGateway } from "../src/gateway.js";
import { driveTraffic, type TrafficResult } from "../src/traffic.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const here = dirname(fileURLToPath(import.meta.url));
const INGEST_BIN = join(here, "..", "..", "..", "packages", "nats", "src", "bin.ts");
const WORKER_CONFIG = join(here, "support", "ingest-worker.config.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const REQUESTS = 10_000;
/** The gateway's deadline for the provider's answer. */
const PROVIDER_TIMEOUT_MS = 3_000;
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
   * killed mid-batch, the log's server killed and restarted.
   */
  /** EventIds the faults must see billed exactly once (the killed worker's unacknowledged ones). */
  mustBillOnce?: () => string[];
  fleetFaults?: (namespace: string, trafficFlowing: () => boolean) => Promise<void>;
  /**
   * A transaction held open elsewhere on the store's server from the end of the traffic until a
   * while after the ingest drained: it holds back the change log's horizon, so rows committed
   * meanwhile are stored but not listed yet. Not set by the scenarios below: in CI other test
   * files share the server, and a held horizon would stall their change-log reads; what it
   * exercises (`changeLogCaughtUp`) happens on its own whenever another transaction is open.
   */
  longTransaction?: () => Promise<{ end(): Promise<void> }>;
  /**
   * Resolves once the change log (`listSince`, which the export reads) lists everything committed
   * so far: on PostgreSQL it hands a row out only once every transaction older than the row's
   * has ended, on the whole server.
   */
  changeLogCaughtUp?: () => Promise<void>;
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
  // On the JetStream deployment: publishes that failed (the facade retries, then spools) and
  // publishes the stream answered as duplicates (a spool replay of a call the server had stored
  // before its acknowledgement was lost).
  const publishes = { failed: 0, duplicate: 0 };
  const log = backends.ingest;
  const ingest: typeof log =
    log === undefined
      ? undefined
      : {
          async publish(observation, options) {
            try {
              const result = await log.publish(observation, options);
              if (result.duplicate) publishes.duplicate++;
              return result;
            } catch (error) {
              publishes.failed++;
              throw error;
            }
          },
        };
  const latch = createGatewayLatch(
    { ...backends, ...(ingest ? { ingest } : {}) },
    {
      spoolPath: join(dir, "spool.jsonl"),
      onWarning: (w) => warnings.push(w.code),
    },
  );
  const gateway = await startGateway({
    latch,
    providerUrl: provider.url,
    providerTimeoutMs: PROVIDER_TIMEOUT_MS,
  });
  let held: { end(): Promise<void> } | undefined;
  try {
    await latch.ready();
    for (const [tenant, limit] of Object.entries(LIMITS)) await backends.quota.setLimit(tenant, limit);

    // Traffic, with the store's connections killed twice while it flows.
    let killed = 0;
    // The fleet's faults (a worker process started, then NATS killed and restarted) must meet
    // traffic: the last 3,000 requests go at one per client per second (32/s, ~90 s) until
    // they are over, so a fast run on an idle machine or a slow worker start on a loaded one
    // still overlap.
    let faultsOver: () => void = () => undefined;
    const faultsDone = new Promise<void>((resolve) => {
      faultsOver = resolve;
    });
    const traffic = driveTraffic({
      gatewayUrl: gateway.url,
      requests: REQUESTS,
      concurrency: 32,
      tenants: Object.keys(LIMITS),
      runId: namespace,
      ...(scenario.fleetFaults ? { holdLast: { requests: 3_000, until: faultsDone } } : {}),
    });
    let trafficDone = false;
    const finished = () => {
      trafficDone = true;
    };
    traffic.then(finished, finished);
    // Its failure is caught at once: it may fail while the connections are dropped below, and a
    // rejection with no handler yet is reported as unhandled.
    const outage = scenario
      .fleetFaults?.(namespace, () => !trafficDone)
      .then(
        () => undefined,
        (error: unknown) => ({ error }),
      )
      .finally(faultsOver);
    if (scenario.dropConnections) {
      for (const delayMs of [1_500, 4_000]) {
        await new Promise((r) => setTimeout(r, delayMs));
        killed += await scenario.dropConnections(namespace);
      }
    }
    // Faults first: a failed fault is the error to see (traffic is awaited anyway).
    const fault = await outage;
    if (fault !== undefined) {
      await traffic.catch(() => undefined);
      throw fault.error;
    }
    const results: TrafficResult[] = await traffic;
    // Holds are settled after their responses: wait for the settles still in flight.
    await gateway.settled();
    // Another application's transaction on the store's server, open while the spool replays and
    // the workers finish (redeliveries): rows committed meanwhile are stored, not yet listed.
    held = await scenario.longTransaction?.();
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
    // Everything is stored; the change log lists it once the long transaction has ended too.
    const ended = new Promise((r) => setTimeout(r, 5_000)).then(() => held?.end());
    await scenario.changeLogCaughtUp?.();
    await ended;

    const ok = results.filter((r) => r.status === 200);
    const byStatus = new Map<number, number>();
    for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    const warningCodes = new Map<string, number>();
    for (const w of warnings) warningCodes.set(w, (warningCodes.get(w) ?? 0) + 1);
    console.log(
      `[gateway e2e: ${scenario.name}] ${REQUESTS} requests: ${[...byStatus].map(([s, n]) => `${n}×${s}`).join(" ")}; ` +
        `provider errors ${provider.counts.error}, timeouts ${provider.counts.timeout}; ` +
        `store connections killed ${killed}; spool replayed ${replayed}; warnings ${warnings.length}` +
        (warnings.length > 0 ? ` (${[...warningCodes].map(([c, n]) => `${n}×${c}`).join(" ")})` : "") +
        (log
          ? `; ingest publishes failed ${publishes.failed}, answered duplicate ${publishes.duplicate}`
          : ""),
    );
    expect(results).toHaveLength(REQUESTS);
    expect(byStatus.get(429) ?? 0).toBeGreaterThan(0);
    // Each call's outcome, against the fault the provider was told to show for it. 429 and 503
    // (the quota store did not answer in time on a starved machine: quota fails closed) are
    // denied before the provider is called, whatever its fault. A provider that never answers
    // is a 504. A 504 is also a call the gateway abandoned at its deadline because the answer
    // had not reached it yet (on a loaded machine the provider — here in the same process —
    // answers late): a gateway's timeout is its own deadline, not the provider's fault, so the
    // provider's timeout count alone cannot predict the 504s. Such a call must have waited the
    // whole deadline, and it is never billed and its hold is released: the checks below (billed
    // = the 200s, each once; nothing held; spent = billed) hold it to that.
    const abandoned: TrafficResult[] = [];
    for (const r of results) {
      const fault = providerFault(r.requestId);
      const allowed =
        fault === "timeout"
          ? [429, 503, 504]
          : fault === "error"
            ? [429, 503, 502, 504]
            : [200, 429, 503, 504];
      expect(allowed, `${r.requestId} (provider fault ${fault ?? "none"})`).toContain(r.status);
      if (r.status === 504 && fault !== "timeout") abandoned.push(r);
    }
    for (const r of abandoned)
      expect(r.ms, `${r.requestId} 504 before the deadline`).toBeGreaterThanOrEqual(PROVIDER_TIMEOUT_MS);
    // Every call the provider held without answering reached the gateway's deadline; every 502 is a provider error.
    expect(results.filter((r) => r.status === 504).length - abandoned.length).toBeGreaterThanOrEqual(
      provider.counts.timeout,
    );
    expect(byStatus.get(502) ?? 0).toBeLessThanOrEqual(provider.counts.error);
    expect(byStatus.get(502) ?? 0).toBeGreaterThanOrEqual(
      provider.counts.error - abandoned.filter((r) => providerFault(r.requestId) === "error").length,
    );
    if (abandoned.length > 0)
      console.log(
        `[gateway e2e: ${scenario.name}] ${abandoned.length} call(s) abandoned at the gateway's deadline`,
      );
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
    for (const eventId of scenario.mustBillOnce?.() ?? [])
      expect(billed.get(eventId), `${eventId} (held unacknowledged by the killed worker)`).toBe(1);
    for (const r of ok.slice(0, 200)) {
      const record = await backends.rated.current(r.eventId as string);
      expect(record, r.requestId).toBeDefined();
      // The call's own record (the event id is the gateway's): its tenant, and the provider's
      // response id for this very request kept as an attribute.
      expect(record?.observation.subject.tenantId).toBe(r.tenant);
      const prefix = r.shape.startsWith("openai")
        ? "chatcmpl-"
        : r.shape.startsWith("anthropic")
          ? "msg_"
          : "resp-";
      expect(record?.observation.attributes).toEqual({ provider_response_id: `${prefix}${r.requestId}` });
    }

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
    await held?.end();
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
/** The JetStream test's own NATS server and worker process: killed here too if the test timed out. */
let natsServer: TestNatsServer | undefined;
let workerProcess: ChildProcess | undefined;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  workerProcess?.kill("SIGKILL");
  await natsServer?.close();
  await s3?.close();
});

describe("gateway end to end, 10,000 requests with faults", () => {
  it("on Postgres + Redis + S3", { timeout: 900_000 }, () => onPostgresRedisS3());

  it(
    "on Postgres + Redis + S3 with NATS JetStream in front of the stores, a worker killed mid-batch and the NATS server restarted",
    { timeout: 900_000 },
    async () => {
      // A nats-server of the test's own (file storage in a fresh directory; the shared server is
      // left alone): the gateway, its two in-process workers and a third worker, a `latch-ingest`
      // process, all use it. Mid-run, while traffic flows: the worker process stalls holding
      // messages it committed and never acknowledged; the NATS server is SIGKILLed and started
      // again on the same port and store (the stream, its consumer and the unacknowledged
      // messages survive; every client reconnects; publishes in flight fail and are spooled,
      // then replayed); then the worker process is SIGKILLed, and its messages are redelivered
      // to the other workers after the ack wait, which find them stored.
      const server = await startNatsServer();
      natsServer = server;
      const stream = `T_gateway_${randomUUID().slice(0, 8)}`;
      const hung: string[] = [];
      try {
        await onPostgresRedisS3(
          { url: server.url, stream, workers: 2 },
          async (namespace, trafficFlowing) => {
            const probe = await connect({
              servers: server.url,
              maxReconnectAttempts: -1,
              reconnectTimeWait: 250,
            });
            const worker = spawn(
              process.execPath,
              ["--conditions=dev-source", "--import", TSX, INGEST_BIN, "--config", WORKER_CONFIG],
              {
                env: {
                  ...process.env,
                  NODE_OPTIONS: undefined,
                  NATS_URL: server.url,
                  LATCH_INGEST_STREAM: stream,
                  LATCH_E2E_SCHEMA: namespace,
                  LATCH_E2E_HANG_AFTER: "25",
                },
                stdio: ["ignore", "pipe", "pipe"],
              },
            );
            workerProcess = worker;
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
            const waitForOutput = async (text: string, timeoutMs: number) => {
              for (let waited = 0; !output.includes(text); waited += 100) {
                if (waited >= timeoutMs || worker.exitCode !== null)
                  throw new Error(
                    `the worker process did not print "${text}"; its output:\n${output.slice(-4_000)}`,
                  );
                await new Promise((r) => setTimeout(r, 100));
              }
            };
            const lag = () => ingestLag(probe, stream);
            try {
              await waitForOutput(`consuming ${stream}`, 120_000);
              // It stored 24 calls, then the 25th (and any later one) committed and unanswered.
              await waitForOutput("hung ", 120_000);
              const before = await lag();
              expect(before.ackPending, "messages held unacknowledged").toBeGreaterThan(0);
              expect(trafficFlowing(), "traffic still flows at the restart").toBe(true);

              // The NATS server dies (no shutdown, no flush) and comes back on the same store.
              const down = Date.now();
              await server.kill();
              await new Promise((r) => setTimeout(r, 2_000));
              await server.restart();
              const downMs = Date.now() - down;
              // The stream and its consumer survived; the stalled worker's messages are still out.
              const after = await waitForLag(lag);
              // Every client is back and traffic publishes to the restarted server again.
              await new Promise((r) => setTimeout(r, 3_000));
              hung.push(
                ...output
                  .split("\n")
                  .filter((l) => l.startsWith("hung "))
                  .map((l) => l.slice(5)),
              );
              console.log(
                `[gateway e2e] NATS down ${downMs} ms; consumer before the kill: ${before.pending} pending, ${before.ackPending} unacknowledged; ` +
                  `after the restart: ${after.pending} pending, ${after.ackPending} unacknowledged; worker process killed holding ${hung.length} committed, unacknowledged call(s)`,
              );
              expect(trafficFlowing(), "traffic still flows after the restart").toBe(true);
              expect(after.ackPending + after.pending, "the stream survived the restart").toBeGreaterThan(0);
              worker.kill("SIGKILL");
              expect(await exited).toBe("SIGKILL");
              expect(hung.length).toBeGreaterThan(0);
            } finally {
              if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
              await probe.close();
            }
          },
          () => hung,
        );
      } finally {
        await server.close();
      }
    },
  );

  /** The consumer's lag once the restarted server answers for it (JetStream recovers first). */
  async function waitForLag(lag: () => Promise<{ pending: number; ackPending: number }>) {
    for (let waited = 0; ; waited += 250) {
      try {
        return await lag();
      } catch (error) {
        if (waited >= 60_000) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async function onPostgresRedisS3(
    nats?: GatewayConfig["nats"],
    fleetFaults?: Scenario["fleetFaults"],
    mustBillOnce?: Scenario["mustBillOnce"],
  ) {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    try {
      await runScenario({
        name: nats ? "Postgres + Redis + S3 + JetStream" : "Postgres + Redis + S3",
        ...(fleetFaults ? { fleetFaults } : {}),
        ...(mustBillOnce ? { mustBillOnce } : {}),
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
        changeLogCaughtUp: async () => {
          // A transaction committed now has an xid above every stored row's; once the
          // horizon passes it, every row is listed.
          const now = await admin.query("SELECT pg_current_xact_id()::text AS xid");
          const xid = (now.rows[0] as { xid: string }).xid;
          for (let waited = 0; ; waited += 100) {
            const r = await admin.query("SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 AS past", [
              xid,
            ]);
            if ((r.rows[0] as { past: boolean }).past) return;
            if (waited >= 300_000)
              throw new Error(`the change log's horizon is still below xid ${xid} after 300 s`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        },
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
