import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, quoteSchema, REQUIRED_SCHEMA_VERSION } from "../src/index.js";

const folder = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "migrations");

describe("shipped migrations", () => {
  it("inline exactly the .sql files, in order (rerun scripts/inline-migrations.mjs after editing)", () => {
    const files = readdirSync(folder)
      .filter((f) => f.endsWith(".sql"))
      .sort();
    expect(MIGRATIONS.map((m) => m.file)).toEqual(files);
    for (const migration of MIGRATIONS) {
      expect(migration.sql).toBe(readFileSync(join(folder, migration.file), "utf8"));
    }
  });

  it("number migrations 1, 2, 3… without gaps, with NNNN_<what>.sql names", () => {
    MIGRATIONS.forEach((m, i) => {
      expect(m.version).toBe(i + 1);
      expect(m.file).toBe(`${String(m.version).padStart(4, "0")}_${m.name}.sql`);
    });
    expect(REQUIRED_SCHEMA_VERSION).toBe(MIGRATIONS[MIGRATIONS.length - 1]?.version);
  });

  it("give each migration a compatibility floor: its `-- compatible-from: <n>` line, else its own version", () => {
    for (const migration of MIGRATIONS) {
      const declared = /^-- compatible-from: (\d+)$/m.exec(migration.sql);
      expect(migration.compatibleFrom).toBe(declared === null ? migration.version : Number(declared[1]));
      expect(migration.compatibleFrom).toBeGreaterThanOrEqual(1);
      expect(migration.compatibleFrom).toBeLessThanOrEqual(migration.version);
    }
  });

  it("accepts only plain schema names, quoted", () => {
    expect(quoteSchema("latch_test_1")).toBe('"latch_test_1"');
    for (const bad of ["", "Latch", "1abc", 'x"; DROP SCHEMA public; --', "a-b", "x".repeat(64)]) {
      expect(() => quoteSchema(bad)).toThrow(TypeError);
    }
  });
});
