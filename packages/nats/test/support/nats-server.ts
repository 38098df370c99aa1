import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A nats-server process of a test's own (JetStream on, file storage in a fresh temporary
 * directory), so the test can SIGKILL it and start it again on the same port and store
 * without touching the shared server. Starting fails loudly (never skips) when the binary is
 * missing or the server does not report ready.
 */
export interface TestNatsServer {
  /** `nats://127.0.0.1:<port>`: the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory (`-sd`): kept across restarts, removed by `close()`. */
  readonly storeDir: string;
  /** Everything the server logged, all runs. */
  log(): string;
  /** SIGKILLs the server (no shutdown, no flush) and waits until the process is gone. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port and store; resolves once it reports ready. `args`
   * replaces the extra arguments given at start (e.g. another `--auth` token).
   */
  restart(args?: readonly string[]): Promise<void>;
  /** Kills the server (if running) and removes its store. Safe to call twice. */
  close(): Promise<void>;
}

/** The binary: `NATS_SERVER_BIN`, else /usr/sbin/nats-server, else `nats-server` on the PATH. */
function binary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  return existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startNatsServer(
  options: { readyTimeoutMs?: number; args?: readonly string[] } = {},
): Promise<TestNatsServer> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  let extraArgs = options.args ?? [];
  const storeDir = await mkdtemp(join(tmpdir(), "latch-nats-"));
  let output = "";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = 0;

  /** One start; rejects (the process killed) if it exits or is not ready in time. */
  async function launch(): Promise<void> {
    const mark = output.length;
    const proc = spawn(
      binary(),
      ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, ...extraArgs],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child = proc;
    exited = new Promise((resolve) => {
      proc.once("close", () => resolve());
      proc.once("error", () => resolve()); // never spawned: no "close" to wait for
    });
    const append = (d: string) => {
      output += d;
    };
    proc.stdout?.setEncoding("utf8").on("data", append);
    proc.stderr?.setEncoding("utf8").on("data", append);
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        clearInterval(poll);
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(
          new Error(`nats-server on port ${port} ${why}; its log:\n${output.slice(mark).slice(-4_000)}`),
        );
      };
      const poll = setInterval(() => {
        if (output.indexOf("Server is ready", mark) >= 0) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 50);
      const timer = setTimeout(() => fail(`did not report ready in ${readyTimeoutMs} ms`), readyTimeoutMs);
      proc.once("error", (e) => fail(`could not start (${binary()}): ${e.message}`));
      proc.once("exit", (code, signal) => {
        if (output.indexOf("Server is ready", mark) < 0)
          fail(`exited (${signal ?? code}) before it was ready`);
      });
    });
  }

  async function kill(): Promise<void> {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  }

  // A test process that ends without close() (a timeout, a crash) takes the server along.
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  // A free port can be taken between the probe and the bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      await exited;
      if (attempt >= 3) {
        process.removeListener("exit", killOnExit);
        await rm(storeDir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    log: () => output,
    kill,
    async restart(args) {
      await kill();
      if (args !== undefined) extraArgs = args;
      // The port is free again once the process is gone; a bind still refused is retried.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch();
          return;
        } catch (error) {
          await exited;
          if (attempt >= 5) throw error;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    async close() {
      process.removeListener("exit", killOnExit);
      await kill();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
