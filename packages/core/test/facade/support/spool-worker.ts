/**
 * One worker process of the shared-spool test: records `count` observations through createLatch
 * against a FileObservationStore that fails a fraction of appends, in bursts with pauses (so
 * other processes find its segments idle and drain them while it still runs), 8 calls at a time.
 * A flusher also calls flushSpool() every 10 records without waiting for it. Prints one line per
 * acknowledged record (`ack <eventId> <status>`) and a final `done <json>`.
 *
 * argv: spoolDir storeDir worker count flusher(0|1) seed [failBefore, default 0.25]
 */
import { createLatch, type LatchWarning } from "../../../src/facade/create-latch.js";
import { MemoryRatedRecordStore } from "../../../src/memory/index.js";
import { FileObservationStore } from "./file-observation-store.js";
import { observationOf, seeded } from "./spool-observations.js";

const [spoolDir, storeDir, workerArg, countArg, flusherArg, seedArg, failBeforeArg] = process.argv.slice(2);
const worker = Number(workerArg);
const count = Number(countArg);
const flusher = flusherArg === "1";
const random = seeded(Number(seedArg) * 31 + worker);

const warnings: Record<string, number> = {};
const latch = createLatch({
  observations: new FileObservationStore(
    storeDir as string,
    `w${worker}`,
    { before: Number(failBeforeArg ?? 0.25), after: 0.1 },
    random,
  ),
  rated: new MemoryRatedRecordStore(),
  pricing: { resolve: async () => undefined }, // unpriced: the observation store is what this test is about
  spoolDir: spoolDir as string,
  retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 4 },
  onWarning: (w: LatchWarning) => {
    warnings[w.code] = (warnings[w.code] ?? 0) + 1;
  },
});
await latch.ready();

const flushes: Promise<{ replayed: number; skipped: number; remaining: number }>[] = [];
const statuses: Record<string, number> = {};
let next = 0;
let burstLeft = 0;
let pause: Promise<void> = Promise.resolve();

async function lane(): Promise<void> {
  for (;;) {
    if (burstLeft === 0) {
      burstLeft = 20 + Math.floor(random() * 60);
      pause = new Promise((r) => setTimeout(r, random() * 800));
    }
    await pause;
    if (next >= count) return;
    const i = next++;
    burstLeft = Math.max(0, burstLeft - 1);
    const result = await latch.record(observationOf(worker, i));
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
    process.stdout.write(`ack w${worker}-${i} ${result.status}\n`);
    if (flusher && i % 10 === 0) flushes.push(latch.flushSpool());
  }
}

await Promise.all(Array.from({ length: 8 }, lane));
const flushed = await Promise.all(flushes);
const replayed = flushed.reduce((sum, f) => sum + f.replayed, 0);
process.stdout.write(
  `done ${JSON.stringify({ worker, statuses, warnings, flushes: flushed.length, replayed })}\n`,
);
await latch.close();
