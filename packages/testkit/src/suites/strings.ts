import type { ApiKeyRecord } from "@latch/core";
import type {
  ApiKeyStore,
  CreditLedger,
  ObservationStore,
  QuotaAuthorizer,
  QuotaReservator,
  RatedRecordStore,
  UsageCounter,
} from "@latch/core/adapter";
import { expect, it } from "vitest";
import { expectInvalidInput } from "../expect-errors.js";
import { makeObservation, makeRatedRecord, uniqueId } from "../fixtures.js";

/*
 * Strings in ids, names and filters, run inside every contract's suite. The rule is core's
 * (`WellFormedText`): U+0000 and unpaired surrogates are `invalid_input` naming the field,
 * because no backend can store them as they are (drivers encode a lone surrogate as U+FFFD, so
 * two ids would alias; PostgreSQL refuses U+0000). Every other character — tabs, newlines,
 * backslashes, quotes, U+FFFD itself — is stored exactly and kept apart from its neighbours.
 */

/** What no store may accept, each with a label for the test output. */
export const ILL_FORMED: ReadonlyArray<readonly [label: string, text: string]> = [
  ["a lone high surrogate", "\uD800"],
  ["a lone low surrogate", "\uDC00"],
  ["a reversed pair", "\uDC00\uD800"],
  ["U+0000", "\u0000"],
];

/**
 * Well-formed ISO 8601 UTC timestamps outside the years 1970–9999 (core's `IsoTimestampSchema`):
 * PostgreSQL has no year 0, JavaScript's `Date.UTC` reads years 0–99 as 1900–1999, and a
 * five-digit year has no plain ISO form. Each is `invalid_input` naming the field, on every
 * backend, rather than a 500 on one and a date shifted by 1,900 years on another.
 */
export const OUT_OF_RANGE_TIMESTAMPS: readonly string[] = [
  "0000-01-01T00:00:00Z",
  "0050-06-01T00:00:00Z",
  "0099-12-31T23:59:59Z",
  "1969-12-31T23:59:59Z",
];

/** Characters every store keeps exactly (a tab breaks COPY's text format, a newline splits lines). */
export const AWKWARD: readonly string[] = [
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\\",
  "\\t",
  "'",
  '"',
  "%_",
  " ",
  "\u00A0",
  "\uFFFD",
  "\u{1F600}",
  "\u0001",
];

/** Ids differing only in one awkward character, distinct from each other. */
function awkwardIds(base: string, suffix = ""): string[] {
  return AWKWARD.map((c, i) => `${base}-${i}${c}x${suffix}`);
}

export function observationStoreStringCases(env: {
  store: () => ObservationStore;
  prefix: () => string;
  countObservations?: (eventId: string) => Promise<number>;
}): void {
  it("refuses a lone surrogate or U+0000 in an eventId, a subject id, a model or an attribute with invalid_input naming the field, storing nothing", async () => {
    const store = env.store();
    // The replacement character itself is a fine id: a lone surrogate must not alias it.
    const replaced = makeObservation({ eventId: `${env.prefix()}-r\uFFFD:0:openai` });
    expect(await store.append(replaced)).toBe("appended");
    for (const [, bad] of ILL_FORMED) {
      const eventId = `${env.prefix()}-r${bad}:0:openai`;
      await expectInvalidInput(store.append(makeObservation({ eventId })), "eventId");
      await expectInvalidInput(
        store.appendMany([makeObservation(), makeObservation({ eventId })]),
        "1.eventId",
      );
      await expectInvalidInput(store.get(eventId), "eventId");
      await expectInvalidInput(store.listUnpriced({ after: eventId, limit: 1 }), "after");
      await expectInvalidInput(store.markPriced([replaced.eventId, eventId]), "eventIds.1");
      const fine = makeObservation();
      await expectInvalidInput(
        store.append({ ...fine, subject: { tenantId: "t", projectId: `p${bad}` } }),
        "subject.projectId",
      );
      await expectInvalidInput(
        store.append({ ...fine, model: { billableModel: `m${bad}` } }),
        "billableModel",
      );
      await expectInvalidInput(
        store.append({ ...fine, attributes: { label: `v${bad}` } }),
        "attributes.label",
      );
      await expectInvalidInput(store.append({ ...fine, attributes: { [`k${bad}`]: "v" } }), "attributes");
      expect(await store.get(fine.eventId)).toBeUndefined();
    }
    expect(await store.get(replaced.eventId)).toEqual(replaced);
    if (env.countObservations !== undefined) expect(await env.countObservations(replaced.eventId)).toBe(1);
  });

  it("refuses a timing outside the years 1970–9999 with invalid_input naming the field, storing nothing", async () => {
    const store = env.store();
    for (const bad of OUT_OF_RANGE_TIMESTAMPS) {
      const fine = makeObservation();
      await expectInvalidInput(
        store.append({ ...fine, timing: { ...fine.timing, startedAt: bad } }),
        "timing.startedAt",
      );
      await expectInvalidInput(
        store.append({ ...fine, timing: { startedAt: bad, completedAt: bad } }),
        "timing.completedAt",
      );
      expect(await store.get(fine.eventId)).toBeUndefined();
    }
  });

  it("stores eventIds holding tabs, newlines, backslashes and quotes exactly, each apart, one by one and in a batch", async () => {
    const store = env.store();
    const batch = awkwardIds(`${env.prefix()}-b`, ":0:openai").map((eventId) =>
      makeObservation({ eventId, subject: { tenantId: `tenant\t${eventId}` } }),
    );
    const single = awkwardIds(`${env.prefix()}-s`, ":0:openai").map((eventId) =>
      makeObservation({ eventId }),
    );
    expect(await store.appendMany(batch)).toEqual(batch.map(() => "appended"));
    for (const observation of single) expect(await store.append(observation)).toBe("appended");
    // A retry of either is recognised by its exact id.
    expect(await store.appendMany([...batch, ...single])).toEqual(
      [...batch, ...single].map(() => "already_exists"),
    );
    for (const observation of [...batch, ...single]) {
      expect(await store.get(observation.eventId)).toEqual(observation);
      if (env.countObservations !== undefined)
        expect(await env.countObservations(observation.eventId)).toBe(1);
    }
    // Listed exactly (compared as sets: code-point and UTF-16 orders differ above U+FFFF).
    const listed: string[] = [];
    let after: string | undefined = env.prefix();
    for (;;) {
      const page: { items: Array<{ eventId: string }>; next?: string } = await store.listUnpriced({
        after,
        limit: 7,
      });
      const ours = page.items.filter((o) => o.eventId.startsWith(env.prefix()));
      listed.push(...ours.map((o) => o.eventId));
      if (page.next === undefined || ours.length < page.items.length) break;
      after = page.next;
    }
    expect(new Set(listed)).toEqual(new Set([...batch, ...single].map((o) => o.eventId)));
    expect(listed).toHaveLength(batch.length + single.length);
  });
}

export function ratedRecordStoreStringCases(env: {
  store: () => RatedRecordStore;
  prefix: () => string;
  countVersions?: (eventId: string) => Promise<number>;
}): void {
  const window = { start: "2026-02-20T00:00:00Z", end: "2026-04-01T00:00:00Z" } as const;

  it("refuses a lone surrogate or U+0000 in an eventId, a filter or a consumer name with invalid_input naming the field", async () => {
    const store = env.store();
    for (const [, bad] of ILL_FORMED) {
      const eventId = `${env.prefix()}-r${bad}:0:openai`;
      // Built by hand: the fixture itself would refuse the id.
      const valid = makeRatedRecord();
      const refused = {
        ...valid,
        eventId,
        ratedRecordId: `${eventId}:v1`,
        observation: { ...valid.observation, eventId },
      };
      await expectInvalidInput(store.put(refused), "eventId");
      await expectInvalidInput(store.putMany([valid, refused]), "1.eventId");
      expect(await store.get(valid.ratedRecordId)).toBeUndefined();
      await expectInvalidInput(store.current(eventId), "eventId");
      await expectInvalidInput(store.get(`${eventId}:v1`), "ratedRecordId");
      await expectInvalidInput(
        store.summary({ ...window, groupBy: [], filters: { tenantId: `t${bad}` } }),
        "filters.tenantId",
      );
      await expectInvalidInput(
        store.lines({ ...window, filters: { model: `m${bad}` }, limit: 5 }),
        "filters.model",
      );
      await expectInvalidInput(store.getCursor(`c${bad}`), "name");
      await expectInvalidInput(store.saveCursor(`c${bad}`, "0"), "name");
    }
  });

  it("refuses a report window outside the years 1970–9999 with invalid_input naming start or end", async () => {
    const store = env.store();
    for (const bad of OUT_OF_RANGE_TIMESTAMPS) {
      await expectInvalidInput(store.summary({ ...window, start: bad, groupBy: [] }), "start");
      await expectInvalidInput(store.lines({ ...window, end: bad, limit: 5 }), "end");
    }
  });

  it("stores eventIds and tenants holding tabs, newlines and quotes exactly; filters and consumer names match exactly", async () => {
    const store = env.store();
    const records = awkwardIds(`${env.prefix()}-e`, ":0:openai").map((eventId, i) =>
      makeRatedRecord({ observation: { eventId, subject: { tenantId: `${env.prefix()}${AWKWARD[i]}t` } } }),
    );
    expect(await store.putMany(records)).toEqual(records.map(() => "stored"));
    expect(await store.putMany(records)).toEqual(records.map(() => "already_exists"));
    for (const [i, record] of records.entries()) {
      expect(await store.current(record.eventId)).toEqual(record);
      expect(await store.get(record.ratedRecordId)).toEqual(record);
      if (env.countVersions !== undefined) expect(await env.countVersions(record.eventId)).toBe(1);
      // Each tenant's report holds its one record and nothing of its neighbours.
      const tenantId = `${env.prefix()}${AWKWARD[i]}t`;
      const page = await store.lines({ ...window, filters: { tenantId }, limit: 10 });
      expect(page.items.map((r) => r.eventId)).toEqual([record.eventId]);
    }
    const names = AWKWARD.map((c) => `${env.prefix()}${c}consumer`);
    for (const name of names) expect(await store.getCursor(name)).toBeUndefined();
    await store.saveCursor(names[0] as string, "0");
    expect(await store.getCursor(names[0] as string)).toBe("0");
    for (const name of names.slice(1)) expect(await store.getCursor(name)).toBeUndefined();
  });
}

export function quotaStringCases(env: { quota: () => QuotaReservator & QuotaAuthorizer }): void {
  const MINUTE = 60_000;

  it("refuses hold ids and accounts with a lone surrogate or U+0000 instead of aliasing them: a limit of 1 grants one hold", async () => {
    const quota = env.quota();
    const account = uniqueId("acct");
    await quota.setLimit(account, 1);
    const base = uniqueId("hold");
    // Two ids that a UTF-8 encoder would both turn into `${base}\uFFFD`, and that one itself.
    for (const [, bad] of ILL_FORMED) {
      await expectInvalidInput(
        quota.reserve({ holdId: `${base}${bad}`, account, amount: 1, ttlMs: MINUTE }),
        "holdId",
      );
      await expectInvalidInput(
        quota.reserve({ holdId: base, account: `${account}${bad}`, amount: 1, ttlMs: MINUTE }),
        "account",
      );
      await expectInvalidInput(quota.commit(`${base}${bad}`, 1), "holdId");
      await expectInvalidInput(quota.void(`${base}${bad}`), "holdId");
      await expectInvalidInput(quota.setLimit(`${account}${bad}`, 5), "account");
      await expectInvalidInput(quota.balance(`${account}${bad}`), "account");
      await expectInvalidInput(quota.check(`${account}${bad}`, 1), "account");
    }
    expect(await quota.reserve({ holdId: `${base}\uFFFD`, account, amount: 1, ttlMs: MINUTE })).toEqual({
      granted: true,
      remaining: 0,
    });
    expect(await quota.balance(account)).toEqual({ limit: 1, spent: 0, held: 1, available: 0 });
  });

  it("keeps hold ids and accounts that differ only in a tab, newline or quote apart", async () => {
    const quota = env.quota();
    const accounts = awkwardIds(uniqueId("acct"));
    for (const [i, account] of accounts.entries()) await quota.setLimit(account, i + 1);
    for (const [i, account] of accounts.entries()) {
      expect(await quota.balance(account)).toEqual({ limit: i + 1, spent: 0, held: 0, available: i + 1 });
    }
    const account = uniqueId("acct");
    await quota.setLimit(account, 1);
    const [first, ...others] = awkwardIds(uniqueId("hold"));
    expect(await quota.reserve({ holdId: first as string, account, amount: 1, ttlMs: MINUTE })).toEqual({
      granted: true,
      remaining: 0,
    });
    // Not retries of the first: each is a new hold, and the limit is spent.
    for (const holdId of others) {
      expect(await quota.reserve({ holdId, account, amount: 1, ttlMs: MINUTE })).toMatchObject({
        granted: false,
        reason: "insufficient",
      });
    }
    expect(await quota.commit(first as string, 1)).toEqual({ committed: 1 });
    await expectInvalidInput(quota.commit(others[0] as string, 1), "holdId"); // never held
    expect(await quota.balance(account)).toEqual({ limit: 1, spent: 1, held: 0, available: 0 });
  });
}

export function usageCounterStringCases(env: { counter: () => UsageCounter }): void {
  it("refuses keys and periods with a lone surrogate or U+0000, and keeps keys differing in a tab or newline apart", async () => {
    const counter = env.counter();
    const key = uniqueId("usage");
    for (const [, bad] of ILL_FORMED) {
      await expectInvalidInput(counter.add(`${key}${bad}`, "2026-03", 1), "key");
      await expectInvalidInput(counter.add(key, `2026-03${bad}`, 1), "period");
      await expectInvalidInput(counter.get(`${key}${bad}`, "2026-03"), "key");
      await expectInvalidInput(counter.get(key, `2026-03${bad}`), "period");
    }
    expect(await counter.get(key, "2026-03")).toBe(0);
    const keys = awkwardIds(key);
    for (const [i, k] of keys.entries()) expect(await counter.add(k, `2026-03${AWKWARD[i]}`, i + 1)).toBe(0);
    for (const [i, k] of keys.entries()) {
      expect(await counter.get(k, `2026-03${AWKWARD[i]}`)).toBe(i + 1);
      expect(await counter.get(k, "2026-03")).toBe(0);
    }
  });
}

export function creditLedgerStringCases(env: { credits: () => CreditLedger }): void {
  it("refuses ids with a lone surrogate or U+0000 naming the field, and stores ids holding tabs and newlines exactly", async () => {
    const credits = env.credits();
    const base = uniqueId("ids");
    for (const [, bad] of ILL_FORMED) {
      await expectInvalidInput(
        credits.createLedger({ ledgerId: `${base}${bad}`, subject: { tenantId: "t" } }),
        "ledgerId",
      );
      await expectInvalidInput(
        credits.createLedger({ ledgerId: `${base}-l`, subject: { tenantId: `t${bad}` } }),
        "subject.tenantId",
      );
      await expectInvalidInput(
        credits.createFeature({
          featureId: `${base}${bad}`,
          measure: { kind: "quantity", meters: ["input_tokens"] },
        }),
        "featureId",
      );
      await expectInvalidInput(credits.getLedger(`${base}${bad}`), "ledgerId");
    }
    expect(await credits.getLedger(`${base}-l`)).toBeUndefined();

    const ledgerId = `${base}\tledger\n`;
    const featureId = `${base}\nfeature\t`;
    await credits.createFeature({ featureId, measure: { kind: "quantity", meters: ["input_tokens"] } });
    await credits.createLedger({ ledgerId, subject: { tenantId: `${base}\ttenant` } });
    expect(await credits.getLedger(ledgerId)).toMatchObject({
      ledgerId,
      subject: { tenantId: `${base}\ttenant` },
    });
    expect(await credits.getFeature(featureId)).toMatchObject({ featureId });
    expect(await credits.getLedger(`${base} ledger `)).toBeUndefined();
    await credits.grant({
      grantId: `${base}\tg`,
      ledgerId,
      featureId,
      amount: "1000",
      effectiveAt: "2026-01-01T00:00:00Z",
    });
    for (const [, bad] of ILL_FORMED) {
      await expectInvalidInput(
        credits.recordUsage({
          ledgerId,
          featureId,
          eventId: `e${bad}`,
          amount: "1",
          at: "2026-01-02T00:00:00Z",
        }),
        "eventId",
      );
    }
    // Events that differ only in a tab or a newline are two events: both burn.
    for (const [i, eventId] of awkwardIds(base).entries()) {
      await credits.recordUsage({
        ledgerId,
        featureId,
        eventId,
        amount: String(i + 1),
        at: "2026-01-02T00:00:00Z",
      });
    }
    const burned = (AWKWARD.length * (AWKWARD.length + 1)) / 2;
    const balance = await credits.balance(ledgerId, "2026-01-03T00:00:00Z");
    expect(balance.features.find((f) => f.featureId === featureId)?.burned).toBe(String(burned));
  });

  it("refuses grant, void and balance times outside the years 1970–9999, and an expiry past 9999, naming the field", async () => {
    const credits = env.credits();
    const base = uniqueId("years");
    const featureId = `${base}-f`;
    const ledgerId = `${base}-l`;
    await credits.createFeature({ featureId, measure: { kind: "quantity", meters: ["input_tokens"] } });
    await credits.createLedger({ ledgerId, subject: { tenantId: base } });
    const grant = { ledgerId, featureId, amount: "10" };
    for (const bad of OUT_OF_RANGE_TIMESTAMPS) {
      await expectInvalidInput(
        credits.grant({ ...grant, grantId: `${base}-g`, effectiveAt: bad }),
        "effectiveAt",
      );
      await expectInvalidInput(credits.balance(ledgerId, bad), "at");
    }
    // 9999-06 + 1 year is past the last timestamp: refused, not stored as "+010000-…" or a 500.
    await expectInvalidInput(
      credits.grant({
        ...grant,
        grantId: `${base}-late`,
        effectiveAt: "9999-06-01T00:00:00Z",
        expiration: { count: 1, unit: "YEAR" },
      }),
      "expiration",
    );
    expect((await credits.listGrants(ledgerId)).map((g) => g.grantId)).toEqual([]);
    // The first and last instants themselves are fine, and an expiry from 1970 is exact.
    const first = await credits.grant({
      ...grant,
      grantId: `${base}-epoch`,
      effectiveAt: "1970-01-01T00:00:00Z",
      expiration: { count: 1, unit: "DAY" },
    });
    expect(first.grant.expiresAt).toBe("1970-01-02T00:00:00.000Z");
    await credits.grant({ ...grant, grantId: `${base}-last`, effectiveAt: "9999-12-31T23:59:59.999Z" });
  });
}

export function apiKeyStoreStringCases(env: {
  store: () => ApiKeyStore;
  record: (overrides: Partial<ApiKeyRecord>) => ApiKeyRecord;
  digest: () => string;
}): void {
  it("refuses an owner or a name with a lone surrogate or U+0000, or a timestamp outside 1970–9999, and keeps owners differing in a tab or newline apart", async () => {
    const store = env.store();
    const tenantId = uniqueId("tenant");
    for (const [, bad] of ILL_FORMED) {
      await expectInvalidInput(
        store.insert(env.record({ owner: { tenantId: `${tenantId}${bad}` } }), env.digest()),
        "tenantId",
      );
      await expectInvalidInput(store.insert(env.record({ name: `ci${bad}` }), env.digest()), "name");
      await expectInvalidInput(store.list({ tenantId: `${tenantId}${bad}` }, { limit: 5 }), "tenantId");
    }
    for (const bad of OUT_OF_RANGE_TIMESTAMPS) {
      await expectInvalidInput(store.insert(env.record({ expiresAt: bad }), env.digest()), "expiresAt");
      await expectInvalidInput(store.insert(env.record({ createdAt: bad }), env.digest()), "createdAt");
    }
    const tab = env.record({ owner: { tenantId: `${tenantId}\tx` }, name: "a\tb\nc" });
    expect(await store.insert(tab, env.digest())).toBe("created");
    expect(await store.get({ tenantId: `${tenantId}\tx` }, tab.id)).toEqual(tab);
    expect(await store.get({ tenantId: `${tenantId}\nx` }, tab.id)).toBeUndefined();
    expect(await store.list({ tenantId: `${tenantId}\nx` }, { limit: 5 })).toEqual({ items: [] });
  });
}
