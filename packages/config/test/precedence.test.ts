// Precedence between the application's generic variables and Latch's own settings in a
// LATCH_CONFIG file (found by an adversarial review: the app's DATABASE_URL used to win).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readLatchSettings } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "latch-config-precedence-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("LATCH_CONFIG vs the application's DATABASE_URL / REDIS_URL", () => {
  it("the Latch-specific database URL in the config file wins over the app's DATABASE_URL", () => {
    const file = join(dir, "latch.json");
    writeFileSync(
      file,
      JSON.stringify({
        LATCH_STORE: "postgres",
        LATCH_DATABASE_URL: "postgres://latch@billing-db:5432/latch",
      }),
    );
    const settings = readLatchSettings({
      LATCH_CONFIG: file,
      DATABASE_URL: "postgres://app@app-db:5432/app", // the application's own database
    });
    expect(settings.databaseUrl).toBe("postgres://latch@billing-db:5432/latch");
  });

  it("the Latch-specific Redis URL in the config file wins over the app's REDIS_URL", () => {
    const file = join(dir, "latch-redis.json");
    writeFileSync(
      file,
      JSON.stringify({ LATCH_STORE: "redis", LATCH_REDIS_URL: "redis://billing-redis:6379" }),
    );
    const settings = readLatchSettings({ LATCH_CONFIG: file, REDIS_URL: "redis://app-cache:6379" });
    expect(settings.redis?.url).toBe("redis://billing-redis:6379");
  });
});
