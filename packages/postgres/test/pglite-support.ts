import { PGlite } from "@electric-sql/pglite";
import { expect } from "vitest";
import { fromPglite, migrate, type Queryable } from "../src/index.js";
import { ALL, LATEST } from "./support.js";

/** An in-memory PGlite migrated into one schema, with the hooks that start and close it. */
export interface InMemoryPglite {
  /** The database; read it in tests and hooks, after `setup`. */
  db: () => Queryable;
  /** Starts PGlite (it takes seconds) and migrates the schema. */
  setup: () => Promise<void>;
  teardown: () => Promise<void>;
}

export function inMemoryPglite(schema: string): InMemoryPglite {
  let pglite: PGlite | undefined;
  let db: Queryable | undefined;
  return {
    db: () => {
      if (db === undefined) throw new Error("PGlite is not set up yet");
      return db;
    },
    setup: async () => {
      pglite = new PGlite();
      db = fromPglite(pglite);
      expect(await migrate(db, { schema })).toEqual({ version: LATEST, applied: ALL });
    },
    teardown: async () => {
      await pglite?.close();
    },
  };
}
