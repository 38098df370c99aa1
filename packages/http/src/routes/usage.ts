import type { ApiKeyRecord, ApiKeys } from "@latch/core";
import { API_KEY_SCOPES, type QuotaBalance, type RatedRecordStore } from "@latch/core/adapter";
import { Hono } from "hono";
import { type BillingEnv, callerKey, isolatedTestCaller } from "../auth.js";
import { notFound, parseInput as parse } from "../problem.js";
import { totalsView } from "../report-views.js";
import { handle, type RouteGroup, type RouteSpec } from "../route.js";
import { UsageParams, UsageView } from "../schemas.js";
import { filtersFor, ownerOf } from "../subject.js";
import { periodWire } from "./keys.js";

const getUsage = {
  method: "get",
  path: "/",
  summary: "The caller's usage in a window, per API key, with a key's quota balance",
  scope: API_KEY_SCOPES.usageRead,
  query: UsageParams,
  status: 200,
  response: UsageView,
} as const satisfies RouteSpec;

/** The usage route, mounted at `/api/billing/usage`. */
export const USAGE_ROUTES: RouteGroup = { base: "/api/billing/usage", routes: [getUsage] };

/** A key's quota balance on the wire: with a period, the period and its bounds (ISO 8601). */
function quotaView(key: ApiKeyRecord, balance: QuotaBalance) {
  const period = key.quota?.period;
  return {
    unit: key.quota?.unit ?? "tokens",
    ...(key.quota?.unit === "money" ? { currency: key.quota.currency } : {}),
    limit: balance.limit,
    spent: balance.spent,
    held: balance.held,
    available: balance.available,
    ...(period === undefined ? {} : { period: periodWire(period) }),
    ...(balance.periodStart === undefined
      ? {}
      : { period_start: new Date(balance.periodStart).toISOString() }),
    ...(balance.periodEnd === undefined ? {} : { period_end: new Date(balance.periodEnd).toISOString() }),
  };
}

/** The usage route as a sub-app: the caller's usage per key, with one key's quota balance. */
export function usageApp(keys: ApiKeys, records: RatedRecordStore): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  handle(app, getUsage, async (c) => {
    const q = parse(UsageParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    let quota: ReturnType<typeof quotaView> | undefined;
    const filters = filtersFor(owner, {});
    if (q.key_id !== undefined) {
      // Keys are stored under their real owner; an isolated test-mode caller sees test-mode keys only.
      const key = await keys.get(callerKey(c).owner, q.key_id);
      if (key === undefined || (isolatedTestCaller(c) && key.mode !== "test")) throw notFound();
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

  return app;
}
