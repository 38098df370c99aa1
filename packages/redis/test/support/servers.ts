import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** True when nothing listens on 127.0.0.1:port (we could bind it). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A spare loopback port whose cluster bus port (port + 10000) is spare too. */
export async function sparePort(taken: readonly number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.includes(port) || taken.includes(port + 10_000)) continue;
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port;
  }
  throw new Error("no spare loopback port found");
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args]);
  return stdout.trim();
}

async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A redis-server this test owns, on a spare loopback port, without persistence. */
export interface OwnedRedisServer {
  readonly port: number;
  readonly url: string;
  /** Starts (or restarts) the server on the same port and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops it at once (SHUTDOWN NOSAVE) and waits until the port is free. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

export async function ownedRedisServer(extraArgs: readonly string[] = []): Promise<OwnedRedisServer> {
  const port = await sparePort();
  const dir = await mkdtemp(join(tmpdir(), "latch-redis-"));
  let running = false;
  const server: OwnedRedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      await run("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "yes",
        "--pidfile",
        join(dir, `redis-${port}.pid`),
        "--logfile",
        join(dir, `redis-${port}.log`),
        ...extraArgs,
      ]);
      running = true;
      await waitFor(`redis-server on ${port}`, async () => (await redisCli(port, "PING")) === "PONG");
    },
    async stop() {
      if (!running) return;
      await redisCli(port, "SHUTDOWN", "NOSAVE").catch(() => "");
      running = false;
      await waitFor(`port ${port} to close`, () => portIsFree(port));
    },
    async dispose() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** A local Redis Cluster on spare loopback ports, owned by the test. */
export interface OwnedCluster {
  /** Every node's port, masters first (as `redis-cli --cluster create` was given them). */
  readonly ports: readonly number[];
  /** Kills one node with SIGKILL (a crash: nothing is flushed, no goodbye to the Cluster). */
  kill(port: number): Promise<void>;
  dispose(): Promise<void>;
}

export interface OwnedClusterOptions {
  /** Replicas per master, so that a master can fail over. Default 0. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long before a silent node counts as failed. Default Redis's (15 s). */
  nodeTimeoutMs?: number;
}

export async function ownedCluster(masters = 3, options: OwnedClusterOptions = {}): Promise<OwnedCluster> {
  const replicas = options.replicasPerMaster ?? 0;
  const dir = await mkdtemp(join(tmpdir(), "latch-redis-cluster-"));
  const ports: number[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await sparePort(ports));
  const pidFile = (port: number) => join(dir, `redis-${port}.pid`);
  const kill = async (port: number) => {
    const pid = Number((await readFile(pidFile(port), "utf8")).trim());
    process.kill(pid, "SIGKILL");
    await waitFor(`port ${port} to close`, () => portIsFree(port));
  };
  const dispose = async () => {
    for (const port of ports) await redisCli(port, "SHUTDOWN", "NOSAVE").catch(() => "");
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await run("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        ...(options.nodeTimeoutMs === undefined
          ? []
          : [
              "--cluster-node-timeout",
              String(options.nodeTimeoutMs),
              "--cluster-replica-validity-factor",
              "0",
            ]),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "yes",
        "--pidfile",
        pidFile(port),
        "--logfile",
        join(dir, `redis-${port}.log`),
      ]);
    }
    for (const port of ports) {
      await waitFor(`cluster node ${port}`, async () => (await redisCli(port, "PING")) === "PONG");
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () =>
        (await redisCli(port, "CLUSTER", "INFO")).includes("cluster_state:ok"),
      );
      // A replica must be in sync with its master before it can take over.
      await waitFor(`replication link of ${port}`, async () => {
        const info = await redisCli(port, "INFO", "replication");
        return info.includes("role:master") || info.includes("master_link_status:up");
      });
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return { ports, kill, dispose };
}
