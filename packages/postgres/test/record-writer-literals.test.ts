/**
 * The record writer's batch goes to the server as one simple query with its values written as
 * string literals. The server converts a query from the session's client_encoding before it
 * lexes it: in a client-only encoding (SJIS, BIG5, GBK, …) the last byte of a UTF-8 character
 * can swallow the backslash the writer doubled, and with `backslash_quote = on` (a setting any
 * role may have) the quote after it then closes the literal. The literals must stay ASCII.
 */
import type { RecordWriter } from "@latch/core/adapter";
import { makeObservation } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("l");
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
// A session set to SJIS with `\'` accepted (pg states UTF8 at startup; pg-native under a role's
// client_encoding, or a connect hook, does not).
const sjis = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
sjis.on("connect", (client) => {
  void client.query("SET client_encoding = 'SJIS'; SET backslash_quote = on");
});

// A session that reads backslashes in '' literals as escapes.
const legacy = new pg.Pool({
  connectionString: DATABASE_URL,
  max: 1,
  options: "-c standard_conforming_strings=off",
});

beforeAll(async () => {
  await migrate(admin, { schema });
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  await sjis.end();
  await legacy.end();
});

function writerOn(pool: pg.Pool): RecordWriter {
  const observations = new PostgresObservationStore(pool, { schema, groupCommit: false });
  const writer = observations.recordWriter(new PostgresRatedRecordStore(pool, { schema }));
  if (writer === undefined) throw new Error("expected a record writer");
  return writer;
}

describe("record writer literals", () => {
  it("an attribute cannot close its literal in a client-only encoding, and is stored exactly", async () => {
    // U+3041 is E3 81 81 in UTF-8; in SJIS, 81 takes the next byte (the first backslash), and
    // the quote the writer doubled then ends the literal: the rest of the value is SQL.
    const obs = makeObservation({
      attributes: { note: `\u3041\\'::jsonb)AS b(x text);DROP TABLE ${schema}.observations--` },
    });
    const result = await writerOn(sjis).write(obs, undefined);
    expect(result.observation).toBe("appended");
    expect(await new PostgresObservationStore(admin, { schema }).get(obs.eventId)).toEqual(obs);
  });

  it("stores non-ASCII text, quotes and backslashes exactly", async () => {
    const eventId = `evt-\u3041\\'"$$\u{1F600}-${process.pid}`;
    const obs = makeObservation({
      eventId,
      subject: { tenantId: "t\\'\u00e9$x$", projectId: "p'\"" },
      attributes: { "k\\'\u3041": "v\\\\''\u{1F600}$$" },
    });
    const result = await writerOn(admin).write(obs, undefined);
    expect(result.observation).toBe("appended");
    const stored = await new PostgresObservationStore(admin, { schema }).get(eventId);
    expect(stored).toEqual(obs);
  });

  it("stores ASCII quotes, backslashes and dollar quotes exactly with standard_conforming_strings off", async () => {
    const eventId = `evt-\\'\\\\''"$$$q$-${process.pid}`;
    const obs = makeObservation({
      eventId,
      subject: { tenantId: "t\\'$x$\\n", projectId: "p'\"\t" },
      attributes: { "k\\'": "v\\\\''$$\\u0000" },
    });
    expect((await writerOn(legacy).write(obs, undefined)).observation).toBe("appended");
    expect(await new PostgresObservationStore(admin, { schema }).get(eventId)).toEqual(obs);
  });

  it("a batch of text alternating ASCII and other characters is stored whole", async () => {
    const observations = new PostgresObservationStore(admin, {
      schema,
      groupCommit: { maxWaitMs: 50, maxBatch: 64 },
    });
    const writer = observations.recordWriter(new PostgresRatedRecordStore(admin, { schema }));
    const attributes = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`k${i}`, "a\u00e9".repeat(85)]),
    );
    const batch = Array.from({ length: 64 }, () => makeObservation({ attributes }));
    const results = await Promise.all(batch.map((obs) => writer?.write(obs, undefined)));
    expect(results.every((r) => r?.observation === "appended")).toBe(true);
    expect(await observations.get((batch[63] as { eventId: string }).eventId)).toEqual(batch[63]);
  });

  it("stores non-ASCII text exactly on a SQL_ASCII database", async () => {
    const database = `latch_ascii_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin.query(
      `CREATE DATABASE ${database} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
    const url = new URL(DATABASE_URL);
    url.pathname = `/${database}`;
    const ascii = new pg.Pool({ connectionString: url.toString(), max: 2 });
    try {
      await migrate(ascii, { schema });
      const obs = makeObservation({
        eventId: `evt-\u00e9\u3041\u{1F600}-${process.pid}`,
        attributes: { note: "caf\u00e9 \u3041\\'" },
      });
      expect((await writerOn(ascii).write(obs, undefined)).observation).toBe("appended");
      expect(await new PostgresObservationStore(ascii, { schema }).get(obs.eventId)).toEqual(obs);
    } finally {
      await ascii.end();
      await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    }
  });
});
