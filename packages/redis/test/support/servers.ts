import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
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

/** A local 3-master Redis Cluster (no replicas) on spare loopback ports, owned by the test. */
export interface OwnedCluster {
  readonly ports: readonly number[];
  dispose(): Promise<void>;
}

export async function ownedCluster(masters = 3): Promise<OwnedCluster> {
  const dir = await mkdtemp(join(tmpdir(), "latch-redis-cluster-"));
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await sparePort(ports));
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
      "0",
      "--cluster-yes",
    ]);
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () =>
        (await redisCli(port, "CLUSTER", "INFO")).includes("cluster_state:ok"),
      );
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return { ports, dispose };
}
