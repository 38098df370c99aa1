import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeEach, expect } from "vitest";
import { fromPglite, migrate, type Queryable } from "../src/index.js";
import { describeCreditConformance } from "./credit-support.js";
import { ALL, LATEST } from "./support.js";

// The credit suite on an in-memory PGlite of its own (PGlite is one session: its
// transactions queue, so concurrency tests exercise the same lock-then-decide path).
const schema = "latch";
let pglite: PGlite;
let db: Queryable;

let ready: Promise<void> | undefined;
beforeEach(async () => {
  ready ??= (async () => {
    pglite = new PGlite();
    db = fromPglite(pglite);
    expect(await migrate(db, { schema })).toEqual({ version: LATEST, applied: ALL });
  })();
  await ready;
}, 60_000);

afterAll(async () => {
  await pglite?.close();
});

describeCreditConformance("pglite", () => db, schema, 1_000);
