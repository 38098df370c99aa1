import { PGlite } from "@electric-sql/pglite";
import { describeApiKeyStore } from "@latch/testkit";
import { afterAll, beforeEach, expect } from "vitest";
import { fromPglite, migrate, PostgresApiKeyStore, type Queryable } from "../src/index.js";
import { rawApiKeyRow } from "./api-key-support.js";
import { ALL, LATEST } from "./support.js";

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

describeApiKeyStore({
  name: "pglite",
  create: () => new PostgresApiKeyStore(db, { schema }),
  inspect: { rawKey: (id) => rawApiKeyRow(db, schema, id) },
});
