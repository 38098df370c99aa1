import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, "..", "..", "src", "bin.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/**
 * `latch-ingest <args> --stream <stream> --nats <url>` as a real process (from source, through
 * tsx), its stdout and stderr piped. `args` default to `--config <support/config>`, `config` a
 * file name in test/support (default `ingest.config.ts`); `env` is added to this process's.
 */
export interface IngestBinOptions {
  stream: string;
  natsUrl: string;
  config?: string;
  args?: readonly string[];
  env?: Record<string, string>;
}

export function spawnIngestBin(options: IngestBinOptions): ChildProcessByStdio<null, Readable, Readable> {
  const args = options.args ?? ["--config", join(here, options.config ?? "ingest.config.ts")];
  return spawn(
    process.execPath,
    [
      "--conditions=dev-source",
      "--import",
      TSX,
      BIN,
      ...args,
      "--stream",
      options.stream,
      "--nats",
      options.natsUrl,
    ],
    {
      env: { ...process.env, NODE_OPTIONS: undefined, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
}

/** A running bin: its process, everything it printed so far (stdout and stderr), its exit. */
export interface IngestBin {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output(): string;
  /** Its exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** {@link spawnIngestBin}, its output collected. */
export function startIngestBin(options: IngestBinOptions): IngestBin {
  const child = spawnIngestBin(options);
  let output = "";
  const append = (s: string) => {
    output += s;
  };
  child.stdout.setEncoding("utf8").on("data", append);
  child.stderr.setEncoding("utf8").on("data", append);
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Runs the bin to its end (SIGKILLed after `killAfterMs`, default 40 s: code null). */
export async function runIngestBin(
  options: IngestBinOptions,
  killAfterMs = 40_000,
): Promise<{ code: number | null; output: string }> {
  const bin = startIngestBin(options);
  const timer = setTimeout(() => bin.child.kill("SIGKILL"), killAfterMs);
  try {
    return { code: await bin.exited, output: bin.output() };
  } finally {
    clearTimeout(timer);
  }
}
