import {
  type ApiKeyRecord,
  type ApiKeys,
  type BillingSubject,
  linesToCsv,
  type RatedUsageRecord,
  type SummaryRow,
} from "@latch/core";
import {
  API_KEY_SCOPES,
  type FilterKey,
  type QuotaBalance,
  type RatedRecordStore,
  TOKEN_METERS,
} from "@latch/core/adapter";
import { type Context, Hono } from "hono";
import type { z } from "zod";
import { apiKeyAuth, type BillingEnv, callerKey, requireScope } from "./auth.js";
import { type BillingCredits, mountCreditRoutes } from "./credits.js";
import { buildOpenApiDocument } from "./openapi.js";
import { invalidInput, notFound, ProblemError, parseInput as parse, readJson, toProblem } from "./problem.js";
import {
  CreateKeyBody,
  ExportParams,
  GROUP_KEYS,
  KeyPathParams,
  type KeyView,
  LinesParams,
  type LineView,
  ListKeysParams,
  SummaryParams,
  type TotalsView,
  UsageParams,
} from "./schemas.js";

export interface BillingAppOptions {
  /** API keys (their store, secret and quota reservator). */
  keys: ApiKeys;
  /** Rated usage, read through `summary` and `lines`. */
  records: RatedRecordStore;
  /** Lines fetched per store call while streaming an export. Default 1,000. */
  exportPageSize?: number;
  /**
   * Prepaid credits: with a `CreditLedger`, the credit routes are mounted under
   * `/api/billing/credits/ledgers` (and listed in `/openapi.json`); without, they are absent.
   */
  credits?: BillingCredits;
  /** The clock (epoch ms) for defaults such as the balance's `at`. Default `Date.now`. */
  clock?: () => number;
}

const DEFAULT_PAGE = 100;

/** The caller's own subject; a `tenant_id` naming another tenant is a 404 (nothing is said about it). */
function ownerOf(c: Context<BillingEnv>, tenantId: string | undefined): BillingSubject {
  const owner = callerKey(c).owner;
  if (tenantId !== undefined && tenantId !== owner.tenantId) throw notFound();
  return owner;
}

/** Report filters: the query's, with the caller's subject on top; a contradiction is a 404. */
function filtersFor(owner: BillingSubject, query: object) {
  const q = query as Partial<Record<string, unknown>>;
  const filters: Partial<Record<FilterKey, string>> = {};
  const wire: Array<[string, FilterKey]> = [
    ["provider", "provider"],
    ["model", "model"],
    ["org_id", "orgId"],
    ["project_id", "projectId"],
    ["api_key_id", "apiKeyId"],
    ["end_user_id", "endUserId"],
    ["feature", "feature"],
  ];
  for (const [name, key] of wire) {
    const value = q[name];
    if (typeof value === "string") filters[key] = value;
  }
  for (const [key, value] of Object.entries(owner) as Array<[FilterKey, string | undefined]>) {
    if (value === undefined) continue;
    if (filters[key] !== undefined && filters[key] !== value) throw notFound();
    filters[key] = value;
  }
  return filters;
}

function ownerView(owner: BillingSubject): z.output<typeof KeyView>["owner"] {
  return {
    tenant_id: owner.tenantId,
    ...(owner.orgId === undefined ? {} : { org_id: owner.orgId }),
    ...(owner.projectId === undefined ? {} : { project_id: owner.projectId }),
    ...(owner.endUserId === undefined ? {} : { end_user_id: owner.endUserId }),
    ...(owner.feature === undefined ? {} : { feature: owner.feature }),
  };
}

function keyView(key: ApiKeyRecord): z.output<typeof KeyView> {
  return {
    id: key.id,
    name: key.name,
    owner: ownerView(key.owner),
    scopes: key.scopes,
    mode: key.mode,
    ...(key.quota === undefined ? {} : { quota: key.quota }),
    created_at: key.createdAt,
    ...(key.expiresAt === undefined ? {} : { expires_at: key.expiresAt }),
    ...(key.revokedAt === undefined ? {} : { revoked_at: key.revokedAt }),
    ...(key.lastUsedAt === undefined ? {} : { last_used_at: key.lastUsedAt }),
  };
}

const EMPTY_TOTALS: z.output<typeof TotalsView> = {
  input_tokens: 0,
  output_tokens: 0,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  total_tokens: 0,
  requests: 0,
  successes: 0,
  failures: 0,
  cost_by_currency: {},
};

function totalsView(row: SummaryRow | undefined): z.output<typeof TotalsView> {
  if (row === undefined) return EMPTY_TOTALS;
  return {
    input_tokens: row.inputTokens,
    output_tokens: row.outputTokens,
    cache_read_tokens: row.cacheReadTokens,
    cache_write_tokens: row.cacheWriteTokens,
    total_tokens: row.totalTokens,
    requests: row.requests,
    successes: row.successes,
    failures: row.failures,
    cost_by_currency: row.costByCurrency,
  };
}

/** One rated record as a line (the same token groupings as the summary). */
export function lineView(record: RatedUsageRecord): z.output<typeof LineView> {
  const obs = record.observation;
  const m = (k: keyof typeof obs.meters) => obs.meters[k] ?? 0;
  let total = 0;
  for (const meter of TOKEN_METERS) total += m(meter);
  const s = obs.subject;
  return {
    completed_at: obs.timing.completedAt,
    event_id: record.eventId,
    rated_record_id: record.ratedRecordId,
    version: record.version,
    tenant_id: s.tenantId,
    ...(s.orgId === undefined ? {} : { org_id: s.orgId }),
    ...(s.projectId === undefined ? {} : { project_id: s.projectId }),
    ...(s.apiKeyId === undefined ? {} : { api_key_id: s.apiKeyId }),
    ...(s.endUserId === undefined ? {} : { end_user_id: s.endUserId }),
    ...(s.feature === undefined ? {} : { feature: s.feature }),
    ...(obs.provider === undefined ? {} : { provider: obs.provider.providerId }),
    model: obs.model.billableModel,
    meters: { ...obs.meters } as Record<string, number>,
    input_tokens: m("input_tokens") + m("audio_input_tokens"),
    output_tokens: m("output_tokens") + m("reasoning_tokens") + m("audio_output_tokens"),
    cache_read_tokens: m("cached_input_tokens"),
    cache_write_tokens: m("cache_write_tokens") + m("cache_write_1h_tokens"),
    total_tokens: total,
    outcome: obs.outcome.kind === "error" ? `error:${obs.outcome.code}` : obs.outcome.kind,
    currency: record.currency,
    cost: record.total,
  };
}

function quotaView(key: ApiKeyRecord, balance: QuotaBalance) {
  return {
    unit: key.quota?.unit ?? "tokens",
    ...(key.quota?.unit === "money" ? { currency: key.quota.currency } : {}),
    ...balance,
  };
}

/**
 * The Latch billing HTTP API as a Hono app. Mount it on any runtime Hono supports:
 * `serve({ fetch: app.fetch })` with `@hono/node-server`, `export default app` on Bun or
 * Workers, or `parent.route("/", app)`.
 *
 * Every route except `GET /openapi.json` needs `Authorization: Bearer <key>`; the key's owner
 * is the subject the route acts for, so no route reads or changes another tenant's data (a
 * request naming another tenant, or its key, gets a 404 that says nothing about it). Routes:
 * `POST/GET /api/billing/keys`, `GET/DELETE /api/billing/keys/{id}`, `GET /api/billing/usage`,
 * `GET /billing/summary`, `GET /billing/lines`, `GET /billing/export` (CSV or JSONL,
 * streamed) and, with `credits`, the credit routes under `/api/billing/credits/ledgers`
 * (ledgers, grants, void, reset, balance, history). Bad input is a 400
 * `application/problem+json` naming each field.
 *
 * @example
 * import { serve } from "@hono/node-server";
 * const keys = new ApiKeys({ store: new PostgresApiKeyStore(pool), secret, quota });
 * const app = createBillingApp({ keys, records: new PostgresRatedRecordStore(pool) });
 * serve({ fetch: app.fetch, port: 8787 });
 */
export function createBillingApp(options: BillingAppOptions): Hono<BillingEnv> {
  const { keys, records } = options;
  const exportPage = options.exportPageSize ?? 1_000;
  const app = new Hono<BillingEnv>();
  let document: unknown;

  app.onError((error) => toProblem(error).toResponse());
  app.notFound(() => notFound().toResponse());

  app.get("/openapi.json", (c) => {
    document ??= buildOpenApiDocument({ credits: options.credits !== undefined });
    return c.json(document as Record<string, unknown>);
  });

  app.use("/api/*", apiKeyAuth(keys));
  app.use("/billing/*", apiKeyAuth(keys));

  // ── keys ───────────────────────────────────────────────────────────────────
  app.post("/api/billing/keys", requireScope(API_KEY_SCOPES.keysWrite), async (c) => {
    const caller = callerKey(c);
    const body = parse(CreateKeyBody, await readJson(c.req.raw), "body");
    const owner = ownerOf(c, body.tenant_id);
    // No escalation: a key can only hand out scopes it has itself.
    const extra = body.scopes.find((scope) => !caller.scopes.includes(scope));
    if (extra !== undefined) {
      throw new ProblemError(403, "insufficient_scope", `This API key cannot grant the scope ${extra}`);
    }
    const { key, plaintext } = await keys
      .create({
        owner,
        name: body.name,
        scopes: body.scopes,
        ...(body.mode === undefined ? {} : { mode: body.mode }),
        ...(body.quota === undefined ? {} : { quota: body.quota }),
        ...(body.expires_at === undefined ? {} : { expiresAt: body.expires_at }),
      })
      .catch((error: unknown) => {
        const problem = toProblem(error);
        const params = problem.problem["invalid-params"];
        if (params === undefined) throw problem;
        // Field names of ApiKeys.create → the body's.
        throw invalidInput(
          params.map((p) => ({ ...p, in: "body", name: p.name === "expiresAt" ? "expires_at" : p.name })),
        );
      });
    c.header("cache-control", "no-store");
    return c.json({ key: keyView(key), secret: plaintext }, 201);
  });

  app.get("/api/billing/keys", requireScope(API_KEY_SCOPES.keysRead), async (c) => {
    const q = parse(ListKeysParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const page = await keys.list(owner, {
      limit: q.limit ?? DEFAULT_PAGE,
      ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
    });
    return c.json({
      items: page.items.map(keyView),
      ...(page.next === undefined ? {} : { next_cursor: page.next }),
    });
  });

  app.get("/api/billing/keys/:id", requireScope(API_KEY_SCOPES.keysRead), async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const key = await keys.get(callerKey(c).owner, id);
    if (key === undefined) throw notFound();
    return c.json(keyView(key));
  });

  app.delete("/api/billing/keys/:id", requireScope(API_KEY_SCOPES.keysWrite), async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const key = await keys.revoke(callerKey(c).owner, id);
    if (key === undefined) throw notFound();
    return c.json(keyView(key));
  });

  // ── usage ──────────────────────────────────────────────────────────────────
  app.get("/api/billing/usage", requireScope(API_KEY_SCOPES.usageRead), async (c) => {
    const q = parse(UsageParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    let quota: ReturnType<typeof quotaView> | undefined;
    const filters = filtersFor(owner, {});
    if (q.key_id !== undefined) {
      const key = await keys.get(owner, q.key_id);
      if (key === undefined) throw notFound();
      filters.apiKeyId = key.id;
      const balance = await keys.quotaBalance(key);
      if (balance !== undefined) quota = quotaView(key, balance);
    }
    const window = { start: q.from, end: q.to, filters };
    const [total, byKey] = await Promise.all([
      records.summary({ ...window, groupBy: [] }),
      records.summary({ ...window, groupBy: ["apiKeyId"] }),
    ]);
    return c.json({
      from: q.from,
      to: q.to,
      tenant_id: owner.tenantId,
      totals: totalsView(total[0]),
      by_key: byKey.map((row) => ({ api_key_id: row.group.apiKeyId ?? "", ...totalsView(row) })),
      ...(quota === undefined ? {} : { quota }),
    });
  });

  // ── billing reports ────────────────────────────────────────────────────────
  app.get("/billing/summary", requireScope(API_KEY_SCOPES.billingRead), async (c) => {
    const q = parse(SummaryParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const groupBy = q.group_by ?? [];
    const window = { start: q.from, end: q.to, filters: filtersFor(owner, q) };
    const [total, rows] = await Promise.all([
      records.summary({ ...window, groupBy: [] }),
      records.summary({ ...window, groupBy: groupBy.map((k) => GROUP_KEYS[k]) }),
    ]);
    return c.json({
      from: q.from,
      to: q.to,
      group_by: groupBy,
      totals: totalsView(total[0]),
      breakdown: rows.map((row) => {
        const group: Record<string, string> = {};
        for (const k of groupBy) group[k] = row.group[GROUP_KEYS[k]] ?? "";
        return { group, ...totalsView(row) };
      }),
    });
  });

  app.get("/billing/lines", requireScope(API_KEY_SCOPES.billingRead), async (c) => {
    const q = parse(LinesParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const pageSize = q.page_size ?? DEFAULT_PAGE;
    const page = await records.lines({
      start: q.from,
      end: q.to,
      filters: filtersFor(owner, q),
      limit: pageSize,
      ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
    });
    return c.json({
      from: q.from,
      to: q.to,
      page_size: pageSize,
      items: page.items.map(lineView),
      ...(page.next === undefined ? {} : { next_cursor: page.next }),
    });
  });

  app.get("/billing/export", requireScope(API_KEY_SCOPES.billingRead), async (c) => {
    const q = parse(ExportParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const format = q.format ?? "csv";
    const base = { start: q.from, end: q.to, filters: filtersFor(owner, q), limit: exportPage };
    // The first page is read before answering, so a store error is still a proper problem.
    let page = await records.lines(base, c.req.raw.signal);
    const header = linesToCsv([]);
    const encoder = new TextEncoder();
    let started = false;
    let done = false;
    const render = (items: RatedUsageRecord[]) =>
      format === "csv"
        ? linesToCsv(items).slice(header.length)
        : items.map((r) => `${JSON.stringify(lineView(r))}\n`).join("");
    const body = new ReadableStream<Uint8Array>({
      // One store page per pull: the client's reading pace drives the paging (backpressure).
      async pull(controller) {
        if (!started) {
          started = true;
          controller.enqueue(encoder.encode((format === "csv" ? header : "") + render(page.items)));
          if (page.next === undefined) done = true;
        } else if (!done) {
          const cursor: string = page.next as string;
          page = await records.lines({ ...base, cursor });
          controller.enqueue(encoder.encode(render(page.items)));
          if (page.next === undefined) done = true;
        }
        if (done) controller.close();
      },
    });
    const name = `latch-lines-${q.from.slice(0, 10)}-${q.to.slice(0, 10)}.${format}`;
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": format === "csv" ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson",
        "content-disposition": `attachment; filename="${name}"`,
        "cache-control": "no-store",
      },
    });
  });

  // ── credits ────────────────────────────────────────────────────────────────
  if (options.credits !== undefined) mountCreditRoutes(app, options.credits, options.clock ?? Date.now);

  return app;
}
