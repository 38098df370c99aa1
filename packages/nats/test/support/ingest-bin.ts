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
export function spawnIngestBin(options: {
  stream: string;
  natsUrl: string;
  config?: string;
  args?: readonly string[];
  env?: Record<string, string>;
}): ChildProcessByStdio<null, Readable, Readable> {
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
