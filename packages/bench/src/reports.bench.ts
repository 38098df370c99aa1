/**
 * Reports on `@latch/postgres` over a large table with corrections (issue 19): a generator
 * COPYs BENCH_REPORT_ROWS rated-record versions (default 10,000,000) spread over March 2026,
 * 5% of them corrections (version 2 of an earlier event, written later, same currency), two
 * currencies, BENCH_REPORT_TENANTS tenants (default 200). Then, each beside the same query
 * over a table holding only the current versions (the floor: what any scheme of versioning
 * costs at least; the same store calls on a schema of its own), as a ratio:
 * 1. `summary` of the month, all tenants, groupBy [];
 * 2. `summary` of the month grouped by tenant and day;
 * 3. `summary` of one tenant-day, groupBy [model] (target < 20 ms);
 * 4. 25 pages of `lines` (1,000 a page) through the month from its start, cursor to cursor.
 * Each figure is the median of 5 runs (warm cache), the two sides alternated. Everything runs
 * in fresh schemas that are dropped at the end.
 *
 * Run: `BENCH_ONLY=reports pnpm bench`, or `tsx --conditions=dev-source src/reports.bench.ts`
 * (BENCH_REPORT_ROWS, BENCH_REPORT_TENANTS, BENCH_REPORT_KEEP, BENCH_REPORT_SCHEMA, DATABASE_URL). The generator is deterministic.
 */
import { createHash, randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  type PriceSnapshot,
  parseObservation,
  type RatedUsageRecord,
} from "@latch/core";
import { tokenGroupsOf } from "@latch/core/adapter";
import { migrate, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { fmt, reportRow } from "./report.js";
import { makeUsages, PROVIDER, SNAPSHOTS } from "./workload.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROWS = Number(process.env.BENCH_REPORT_ROWS ?? 10_000_000);
const TENANTS = Number(process.env.BENCH_REPORT_TENANTS ?? 200);
/** Rows per COPY statement (each one a statement of its own, as a writer's batches are). */
const CHUNK = 50_000;
/** BENCH_REPORT_KEEP=1 keeps the schema (its name is printed); BENCH_REPORT_SCHEMA reuses a kept one. */
const KEEP = process.env.BENCH_REPORT_KEEP === "1" || process.env.BENCH_REPORT_SCHEMA !== undefined;
const schema = process.env.BENCH_REPORT_SCHEMA ?? `latch_bench_${randomBytes(4).toString("hex")}`;
const table = `"${schema}".rated_records`;
/** The floor: a schema of its own, migrated alike, holding only the current versions. */
const floorSchema = `${schema}_floor`;
const floor = `"${floorSchema}".rated_records`;

const MONTH_START = Date.parse("2026-03-01T00:00:00Z");
const MONTH_MS = 31 * 86_400_000;
const MONTH = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };
/** Every 20th version is a correction: 5%. */
const EVERY = 20;
/** A correction arrives about this many corrections (× 20 rows) after the event it corrects. */
const LAG = 500;
const EVENTS = ROWS - Math.floor(ROWS / EVERY);

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Rated templates (three models, varied meters): each version copies one and sets its ids. */
function templates(): RatedUsageRecord[] {
  const engine = new DefaultRatingEngine();
  const pricing = new InMemoryPricingSource(Object.values(SNAPSHOTS) as unknown as PriceSnapshot[]);
  return makeUsages(256, 19).map((u, i) => {
    const completedAt = "2026-03-01T00:00:00.000Z";
    const observation = parseObservation({
      eventId: `tpl-${i}`,
      subject: { tenantId: "t", projectId: `p-${i % 7}` },
      meters: u.meters,
      model: { billableModel: u.model },
      provider: { providerId: PROVIDER[u.model] as string },
      source: { kind: "provider_reported" },
      outcome: i % 20 === 0 ? { kind: "error", code: "rate_limited" } : { kind: "success" },
      timing: { startedAt: completedAt, completedAt },
    });
    return engine.rate(observation, pricing.require(observation.model, completedAt), {
      ratedAt: "2026-04-01T00:00:00Z",
    });
  });
}

/** The event that the correction at row `20c + 19` corrects (each event at most once). */
const correctedEvent = (c: number) => (c >= LAG ? (c - LAG) * (EVERY - 1) : c * (EVERY - 1) + 1);
const tenantOf = (k: number) => (k * 7919) % TENANTS;
const tenantName = (t: number) => `tenant-${String(t).padStart(4, "0")}`;
/** One tenant in ten bills in EUR (a correction keeps its event's currency). */
const currencyOf = (k: number) => (tenantOf(k) % 10 === 3 ? "EUR" : "USD");
const timeOf = (k: number) => MONTH_START + Math.floor((k / EVENTS) * MONTH_MS);

function versionAt(tpl: RatedUsageRecord[], i: number): RatedUsageRecord {
  const correction = i % EVERY === EVERY - 1;
  const k = correction ? correctedEvent(Math.floor(i / EVERY)) : i - Math.floor(i / EVERY);
  const base = tpl[(k + (correction ? 101 : 0)) % tpl.length] as RatedUsageRecord;
  const eventId = `ev-${k}`;
  const completedAt = new Date(timeOf(k)).toISOString();
  const version = correction ? 2 : 1;
  return {
    ...base,
    ratedRecordId: `${eventId}:v${version}`,
    eventId,
    version,
    ...(correction ? { supersedes: `${eventId}:v1` } : {}),
    currency: currencyOf(k),
    observation: {
      ...base.observation,
      eventId,
      subject: { ...base.observation.subject, tenantId: tenantName(tenantOf(k)) },
      timing: { startedAt: completedAt, completedAt },
    },
  };
}

const COLUMNS =
  "rated_record_id, event_id, version, hash, payload, currency, total, completed_ms, completed_text, " +
  "completed_at, completed_day, provider, model, tenant_id, org_id, project_id, api_key_id, end_user_id, " +
  "feature, success, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens";

/** One COPY text line with the store's columns (as `put_rated_records` writes them). */
function copyLine(r: RatedUsageRecord): string {
  const o = r.observation;
  // The hash column holds the SHA-256 of the payload text, not the canonical hash that
  // put_rated_records compares (reports never read it; the canonical one would triple the
  // generator's time).
  const json = JSON.stringify(r);
  const t = tokenGroupsOf(o.meters);
  const ms = Date.parse(o.timing.completedAt);
  return `${[
    r.ratedRecordId,
    r.eventId,
    r.version,
    `sha256:${createHash("sha256").update(json).digest("hex")}`,
    json.replaceAll("\\", "\\\\"),
    r.currency,
    r.total,
    ms,
    o.timing.completedAt,
    o.timing.completedAt,
    o.timing.completedAt.slice(0, 10),
    o.provider?.providerId ?? "",
    o.model.billableModel,
    o.subject.tenantId,
    o.subject.orgId ?? "",
    o.subject.projectId ?? "",
    o.subject.apiKeyId ?? "",
    o.subject.endUserId ?? "",
    o.subject.feature ?? "",
    o.outcome.kind === "success" ? "t" : "f",
    t.inputTokens,
    t.outputTokens,
    t.cacheReadTokens,
    t.cacheWriteTokens,
    t.totalTokens,
  ].join("\t")}\n`;
}

/** COPYs every version into the store's table, CHUNK rows per statement (the trigger runs per statement). */
async function load(pool: pg.Pool): Promise<number> {
  const tpl = templates();
  const client = await pool.connect();
  const t0 = process.hrtime.bigint();
  try {
    for (let from = 0; from < ROWS; from += CHUNK) {
      const to = Math.min(ROWS, from + CHUNK);
      const stream = client.query(copyFrom(`COPY ${table} (${COLUMNS}) FROM STDIN`));
      await pipeline(
        (async function* () {
          for (let i = from; i < to; i += 1_000) {
            let text = "";
            for (let j = i; j < Math.min(to, i + 1_000); j++) text += copyLine(versionAt(tpl, j));
            yield text;
          }
        })(),
        stream,
      );
    }
  } finally {
    client.release();
  }
  return seconds(t0);
}

/**
 * The floor: the current versions alone, copied into a schema migrated like the store's and
 * read by a store of its own, so both sides run the same statements through the same code and
 * differ only in the superseded versions that the store's table also holds.
 */
async function buildFloor(pool: pg.Pool): Promise<void> {
  await migrate(pool, { schema: floorSchema });
  // March 2026's partitions (migration 0017; migrate() creates only this month's and the next).
  await pool.query(`SELECT "${floorSchema}".maintain_partitions('2026-03', '2026-03')`);
  await pool.query(
    `INSERT INTO ${floor} (id, xid, ${COLUMNS}) SELECT id, xid, ${COLUMNS} FROM ${table} WHERE is_current`,
  );
}

/**
 * Median times (ms) of `a` and `b` over `runs` runs each, alternated (a, b, a, b, …) after one
 * warm-up of each, so that load from elsewhere on the machine weighs on both alike.
 */
async function medians(
  runs: number,
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<[number, number]> {
  await a();
  await b();
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) {
    for (const [k, fn] of [a, b].entries()) {
      const t = process.hrtime.bigint();
      await fn();
      times[k as 0 | 1].push(seconds(t) * 1000);
    }
  }
  const mid = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(runs / 2)] as number;
  return [mid(times[0]), mid(times[1])];
}

async function main() {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  try {
    let loadSeconds = Number.NaN;
    const t1 = process.hrtime.bigint();
    if (process.env.BENCH_REPORT_SCHEMA === undefined) {
      await migrate(pool, { schema });
      await pool.query(`SELECT "${schema}".maintain_partitions('2026-03', '2026-03')`);
      loadSeconds = await load(pool);
      await buildFloor(pool);
      await pool.query(`VACUUM ANALYZE ${table}`);
      await pool.query(`VACUUM ANALYZE ${floor}`);
    }
    const floorSeconds = seconds(t1) - loadSeconds;
    const { rows: counts } = await pool.query(
      `SELECT (SELECT count(*) FROM ${table})::int AS versions, (SELECT count(*) FROM ${floor})::int AS current,
              (SELECT count(*) FROM ${table} WHERE is_current)::int AS flagged`,
    );
    const c = counts[0] as { versions: number; current: number; flagged: number };
    if (c.current !== EVENTS || c.flagged !== EVENTS) {
      throw new Error(`expected ${EVENTS} current versions, found ${c.current} (flag: ${c.flagged})`);
    }
    console.log(
      `\nreports over ${fmt(c.versions)} rated-record versions (${fmt(c.versions - c.current)} superseded by corrections, ${TENANTS} tenants, USD+EUR), COPY at ${fmt(c.versions / loadSeconds)}/s, floor built and both analyzed in ${floorSeconds.toFixed(0)} s${KEEP ? `, schema ${schema} kept` : ""}`,
    );

    const store = new PostgresRatedRecordStore(pool, { schema });
    const current = new PostgresRatedRecordStore(pool, { schema: floorSchema });
    const tenant = tenantName(7);
    const day = { start: "2026-03-10T00:00:00Z", end: "2026-03-11T00:00:00Z" };
    const PAGES = 25;
    const LIMIT = 1_000;
    const pages = async (from: PostgresRatedRecordStore) => {
      let cursor: string | undefined;
      for (let p = 0; p < PAGES; p++) {
        const page = await from.lines({ ...MONTH, limit: LIMIT, ...(cursor ? { cursor } : {}) });
        cursor = page.next;
        if (cursor === undefined) break;
      }
    };
    const cases: Array<{
      label: string;
      latch: () => Promise<unknown>;
      floor: () => Promise<unknown>;
      target?: number;
    }> = [
      {
        label: "month summary, all tenants, groupBy []",
        latch: () => store.summary({ ...MONTH, groupBy: [] }),
        floor: () => current.summary({ ...MONTH, groupBy: [] }),
      },
      {
        label: "month summary, groupBy [tenantId, day]",
        latch: () => store.summary({ ...MONTH, groupBy: ["tenantId", "day"] }),
        floor: () => current.summary({ ...MONTH, groupBy: ["tenantId", "day"] }),
      },
      {
        label: "one tenant-day summary, groupBy [model]",
        latch: () => store.summary({ ...day, groupBy: ["model"], filters: { tenantId: tenant } }),
        floor: () => current.summary({ ...day, groupBy: ["model"], filters: { tenantId: tenant } }),
        target: 20,
      },
      {
        label: `${PAGES} pages of lines (${fmt(LIMIT)} a page, payloads parsed)`,
        latch: () => pages(store),
        floor: () => pages(current),
      },
    ];
    for (const { label, latch, floor: floorFn, target } of cases) {
      const [latchMs, floorMs] = await medians(5, latch, floorFn);
      const ratio = latchMs / floorMs;
      const met = ratio <= 2 && (target === undefined || latchMs < target);
      console.log(
        `  ${label.padEnd(52)} ${latchMs.toFixed(1).padStart(8)} ms   floor ${floorMs.toFixed(1).padStart(8)} ms   ${ratio.toFixed(2)}×`,
      );
      reportRow({
        area: "postgres",
        metric: `reports over ${fmt(c.versions)} versions, 5% corrections: ${label} (median of 5)`,
        latch: `${latchMs.toFixed(1)} ms`,
        against: "the same call over a table of current versions only",
        againstValue: `${floorMs.toFixed(1)} ms`,
        ratio: `${ratio.toFixed(2)}×`,
        target: target === undefined ? "≤ 2×" : `≤ 2×, < ${target} ms`,
        met,
      });
    }
  } finally {
    if (!KEEP) {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS "${floorSchema}" CASCADE`);
    }
    await pool.end();
  }
}

await main();
