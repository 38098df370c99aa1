/**
 * The deployments a gateway test runs on (embedded default, Postgres + Redis, Postgres + Redis +
 * NATS JetStream), each opened for a describe block with names of its own and closed after it.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch, LatchWarning } from "@latch/core";
import { afterAll, beforeAll } from "vitest";
import { startNatsServer, type TestNatsServer } from "../../../../packages/nats/test/support/nats-server.js";
import {
  createGatewayLatch,
  type GatewayBackends,
  type GatewayConfig,
  openGatewayBackends,
} from "../../src/config.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export interface Deployment {
  name: string;
  /** How a test's log line names it. */
  short: string;
  nats: boolean;
  pg: boolean;
}

export const DEPLOYMENTS: Deployment[] = [
  { name: "embedded default", short: "embedded", nats: false, pg: false },
  { name: "Postgres + Redis", short: "Postgres + Redis", nats: false, pg: true },
  { name: "Postgres + Redis + NATS JetStream", short: "JetStream", nats: true, pg: true },
];

export interface OpenDeployment {
  /** A directory of its own: exports, spools. */
  readonly dir: string;
  /** `gw_<label>_<random>`: the schema, key prefix and stream (`T_<namespace>`) of this block. */
  readonly namespace: string;
  readonly backends: GatewayBackends;
  /** The gateway's latch on the backends, ready (its spool in `dir`). */
  readonly latch: Latch;
}

/**
 * Registers the hooks that open `deployment` before the block's tests (a nats-server of its own
 * for JetStream; dropOnClose: its schema, keys and streams go at the end) and close it after them.
 * Call it before the hooks that use it: vitest runs afterAll hooks in reverse, so theirs run first.
 */
export function useDeployment(
  { nats, pg }: Deployment,
  label: string,
  onWarning: (warning: LatchWarning) => void = () => {},
): OpenDeployment {
  const namespace = `gw_${label}_${randomUUID().slice(0, 8)}`;
  let dir: string | undefined;
  let natsServer: TestNatsServer | undefined;
  let backends: GatewayBackends | undefined;
  let latch: Latch | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `latch-gateway-${label}-`));
    if (nats) natsServer = await startNatsServer();
    const config: GatewayConfig = {
      exportDir: join(dir, "out"),
      namespace,
      dropOnClose: true,
      ...(pg ? { databaseUrl: DATABASE_URL, redisUrl: REDIS_URL } : {}),
      ...(natsServer ? { nats: { url: natsServer.url, stream: `T_${namespace}`, workers: 1 } } : {}),
    };
    backends = await openGatewayBackends(config);
    latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl"), onWarning });
    await latch.ready();
  }, 120_000);

  afterAll(async () => {
    await latch?.close();
    await backends?.close();
    await natsServer?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  const opened = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useDeployment: not open before its beforeAll hook");
    return value;
  };
  return {
    namespace,
    get dir() {
      return opened(dir);
    },
    get backends() {
      return opened(backends);
    },
    get latch() {
      return opened(latch);
    },
  };
}

/** Polls `probe` until it answers a value; fails after `timeoutMs` (generous: the machine is shared). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  for (let waited = 0; ; waited += 100) {
    const value = await probe();
    if (value !== undefined) return value;
    if (waited >= timeoutMs) throw new Error(`${what}: not reached after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
