import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { observationHash } from "../../src/adapter.js";
import { createLatch } from "../../src/facade/create-latch.js";
import { parseObservation } from "../../src/index.js";
import { MemoryRatedRecordStore } from "../../src/memory/index.js";
import { FileObservationStore, readInserts } from "./support/file-observation-store.js";
import { observationOf } from "./support/spool-observations.js";

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, "support", "spool-worker.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

const WORKERS = 4;
const PER_WORKER = 400;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-spool-procs-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface WorkerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts a worker; `onStdout` sees its output so far (a test may kill it on what it saw). */
function startWorker(args: string[], onStdout: (stdout: string) => void = () => {}) {
  const child = spawn(process.execPath, ["--import", TSX, WORKER, ...args], {
    env: { ...process.env, NODE_OPTIONS: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
    onStdout(stdout);
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  const done = new Promise<WorkerRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

const runWorker = (args: string[]) => startWorker(args).done;

/** Event ids a worker acknowledged (printed `ack <eventId> <status>`). */
function ackedIn(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("ack "))
    .map((l) => l.split(" ")[1] as string);
}

/** A process whose store works again flushes the spool, then closes. */
async function finalFlush(spoolDir: string, storeDir: string): Promise<FileObservationStore> {
  const store = new FileObservationStore(storeDir, "final");
  const latch = createLatch({
    observations: store,
    rated: new MemoryRatedRecordStore(),
    pricing: { resolve: async () => undefined },
    spoolDir,
    onWarning: (w) => {
      throw new Error(`unexpected warning ${w.code}: ${w.message}`);
    },
  });
  await latch.ready();
  expect(await latch.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
  await latch.close();
  return store;
}

describe("a spool directory shared by 4 processes", () => {
  it("with a store failing 35% of appends and 2 processes flushing concurrently: every acknowledged observation is stored exactly once, and the spool ends empty", async () => {
    const spoolDir = join(dir, "spool");
    const storeDir = join(dir, "store");
    const seed = Date.now() % 1_000_000;
    const runs = await Promise.all(
      Array.from({ length: WORKERS }, (_, w) =>
        runWorker([spoolDir, storeDir, String(w), String(PER_WORKER), w < 2 ? "1" : "0", String(seed)]),
      ),
    );
    for (const run of runs) expect(run.code, `seed ${seed}: ${run.stderr}`).toBe(0);

    const acked = new Set(runs.flatMap((run) => ackedIn(run.stdout)));
    const summaries: Array<{ statuses: Record<string, number>; replayed: number; flushes: number }> = [];
    for (const run of runs) {
      for (const line of run.stdout.split("\n"))
        if (line.startsWith("done ")) summaries.push(JSON.parse(line.slice(5)));
    }
    expect(acked.size).toBe(WORKERS * PER_WORKER);
    const spooled = summaries.reduce((n, s) => n + (s.statuses.spooled ?? 0), 0);
    const replayedByWorkers = summaries.reduce((n, s) => n + s.replayed, 0);
    // The run did what it is meant to: many records spooled, and flushed while others spooled.
    expect(spooled, `seed ${seed}`).toBeGreaterThan(100);
    expect(replayedByWorkers, `seed ${seed}`).toBeGreaterThan(0);

    const store = await finalFlush(spoolDir, storeDir);

    // Every acknowledged observation is stored, as recorded, and nothing else is.
    const stored = await store.eventIds();
    expect(stored).toEqual([...acked].sort());
    for (const eventId of stored) {
      const [w, i] = eventId.slice(1).split("-").map(Number) as [number, number];
      const got = await store.get(eventId);
      expect(got && observationHash(got)).toBe(observationHash(parseObservation(observationOf(w, i))));
    }
    // Exactly once: one `appended` per event across all processes; every other attempt found it stored.
    const inserts = await readInserts(storeDir);
    expect(inserts).toHaveLength(WORKERS * PER_WORKER);
    expect(new Set(inserts.map((i) => i.eventId)).size).toBe(WORKERS * PER_WORKER);
    // Spooled lines were stored by a process other than the one that spooled them.
    const byOthers = inserts.filter((i) => i.actor !== i.eventId.split("-")[0]).length;
    expect(byOthers, `seed ${seed}`).toBeGreaterThan(0);
    // The spool is empty: no segment, no claim, nothing set aside.
    expect(await readdir(spoolDir)).toEqual([]);
  }, 180_000); // ~20-35 s here with the machine's load average at 18 on 2 cores

  it("a process killed with SIGKILL while it spools and flushes loses no acknowledged observation", async () => {
    const spoolDir = join(dir, "spool");
    const storeDir = join(dir, "store");
    const seed = Date.now() % 1_000_000;
    // Worker 0 spools nearly everything (its store fails 90% of appends) and flushes; it is
    // killed after 150 acknowledgements, mid-append or mid-flush. Worker 1 flushes alongside.
    const victim = startWorker([spoolDir, storeDir, "0", "100000", "1", String(seed), "0.9"], (out) => {
      if (ackedIn(out).length >= 150) victim.child.kill("SIGKILL");
    });
    const survivor = runWorker([spoolDir, storeDir, "1", "300", "1", String(seed)]);
    const [killed, survived] = await Promise.all([victim.done, survivor]);
    expect(killed.code, `seed ${seed}: ${killed.stderr}`).toBe(null);
    expect(survived.code, `seed ${seed}: ${survived.stderr}`).toBe(0);

    const acked = [...ackedIn(killed.stdout), ...ackedIn(survived.stdout)];
    expect(acked.length).toBeGreaterThanOrEqual(450);
    const store = await finalFlush(spoolDir, storeDir);
    const stored = new Set(await store.eventIds());
    expect(
      acked.filter((id) => !stored.has(id)),
      `seed ${seed}`,
    ).toEqual([]);
    const inserts = await readInserts(storeDir);
    expect(new Set(inserts.map((i) => i.eventId)).size).toBe(inserts.length);
    // The dead process's segments, claims and copies were all taken over or swept.
    expect(await readdir(spoolDir)).toEqual([]);
  }, 180_000); // ~20-35 s here with the machine's load average at 18 on 2 cores
});
