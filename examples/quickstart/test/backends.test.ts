import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { simulateDay } from "../src/simulation.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-quickstart-backends-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the same application code on another backend", () => {
  it("PostgreSQL + Redis bill the simulated day exactly like the embedded default", async () => {
    const memory = await simulateDay({ calls: 600, outDir: join(dir, "memory") });
    const real = await simulateDay({
      calls: 600,
      outDir: join(dir, "real"),
      backends: { databaseUrl, redisUrl, namespace: `latch_qs_${process.pid}`, dropOnClose: true },
    });
    expect(real.backend).toMatch(/PostgreSQL .* \+ Redis/);
    expect(real.summary).toEqual(memory.summary);
    expect(real.totalUsd).toBe(memory.totalUsd);
    expect(real.denials).toEqual(memory.denials);
    expect(real.reRated).toEqual(memory.reRated);
    expect(real.exportKeys.length).toBeGreaterThan(0);
  });
});
