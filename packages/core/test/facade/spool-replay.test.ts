/**
 * The facade's use of the spool (`spoolingTo`, `createSpoolReplay`): what is spooled is said so,
 * and a flush records each entry again, sets aside what can never be stored, and stops at a
 * store error with the entry still spooled.
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IdempotencyConflictError } from "../../src/errors/index.js";
import { Spool } from "../../src/facade/spool.js";
import { createSpoolReplay, spoolingTo } from "../../src/facade/spool-replay.js";
import type { LatchWarning } from "../../src/facade/types.js";
import { parseObservation, type UsageObservation } from "../../src/index.js";
import { observation } from "../support.js";

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-spool-replay-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const call = (eventId: string): UsageObservation =>
  parseObservation(observation({ input_tokens: 10 }, { eventId }));

const warn = (w: LatchWarning) => warnings.push(w);

/** Pending spool files (not rejected/). */
async function pending(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name !== "rejected");
}

describe("spool replay", () => {
  it("spooling says where the call went; a flush records every spooled call once and empties the spool", async () => {
    const spool = new Spool({ dir });
    const toSpool = spoolingTo(spool, warn);
    await toSpool(call("e1"));
    await toSpool(call("e2"));
    expect(warnings).toEqual([
      { code: "spooled", message: `observation e1 spooled to ${spool.path}`, eventId: "e1" },
      { code: "spooled", message: `observation e2 spooled to ${spool.path}`, eventId: "e2" },
    ]);
    const replayed: string[] = [];
    const flush = createSpoolReplay({ spool, warn, replay: async (obs) => replayed.push(obs.eventId) });
    expect(await flush()).toEqual({ replayed: 2, skipped: 0, remaining: 0 });
    expect(replayed).toEqual(["e1", "e2"]);
    expect(await flush()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
    await spool.close();
  });

  it("an entry that is not an observation or conflicts with the stored one is set aside with a warning", async () => {
    const spool = new Spool({ dir });
    const lines = [
      { v: 1, observation: { eventId: "bad" } },
      { v: 1, observation: call("e1") },
      { v: 1, observation: call("e2") },
    ];
    await writeFile(join(dir, "seg_test-1.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
    const replayed: string[] = [];
    const flush = createSpoolReplay({
      spool,
      warn,
      replay: async (obs) => {
        if (obs.eventId === "e1")
          throw new IdempotencyConflictError({ id: "e1", existingHash: "a", incomingHash: "b" });
        replayed.push(obs.eventId);
      },
    });
    expect(await flush()).toEqual({ replayed: 1, skipped: 2, remaining: 0 });
    expect(replayed).toEqual(["e2"]);
    expect(warnings.map((w) => w.code)).toEqual(["spool_replay_failed", "spool_replay_failed"]);
    expect(warnings[0]?.message).toMatch(
      /^spool seg_test-1\.jsonl line 1 was refused: not a valid observation; moved to rejected\//,
    );
    expect(warnings[1]?.message).toMatch(
      /line 2 was refused: e1 conflicts with the stored observation; moved to rejected\//,
    );
    expect(await readdir(join(dir, "rejected"))).not.toEqual([]);
    await spool.close();
  });

  it("a store error stops the flush: that entry and the rest stay spooled for the next one", async () => {
    const spool = new Spool({ dir });
    const toSpool = spoolingTo(spool, () => {});
    for (const id of ["e1", "e2", "e3"]) await toSpool(call(id));
    let down = true;
    const replayed: string[] = [];
    const flush = createSpoolReplay({
      spool,
      warn,
      replay: async (obs) => {
        if (down && obs.eventId === "e2") throw new Error("connection reset");
        replayed.push(obs.eventId);
      },
    });
    expect(await flush()).toEqual({ replayed: 1, skipped: 0, remaining: 2 });
    expect(warnings.map((w) => w.code)).toEqual(["spool_replay_failed"]);
    expect(warnings[0]?.message).toMatch(/^replay stopped at e2 \(.+ line 2\); it stays spooled$/);
    expect(await pending()).not.toEqual([]);
    down = false;
    const report = await flush();
    expect(report.remaining).toBe(0);
    expect(replayed).toEqual(["e1", "e2", "e3"]);
    await spool.close();
  });
});
