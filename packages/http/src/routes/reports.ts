import { API_KEY_SCOPES, type RatedRecordStore } from "@latch/core/adapter";
import { Hono } from "hono";
import type { BillingEnv } from "../auth.js";
import { parseInput as parse } from "../problem.js";
import { lineView, totalsView } from "../report-views.js";
import { DEFAULT_PAGE_SIZE, handle, type RouteGroup, type RouteSpec } from "../route.js";
import { GROUP_KEYS, LinesParams, LinesView, SummaryParams, SummaryView } from "../schemas.js";
import { filtersFor, ownerOf } from "../subject.js";

const getSummary = {
  method: "get",
  path: "/summary",
  summary: "Token, request and cost totals in a window, grouped",
  scope: API_KEY_SCOPES.billingRead,
  query: SummaryParams,
  status: 200,
  response: SummaryView,
} as const satisfies RouteSpec;

const getLines = {
  method: "get",
  path: "/lines",
  summary: "Billing lines in a window, a page at a time (cursor pagination)",
  scope: API_KEY_SCOPES.billingRead,
  query: LinesParams,
  status: 200,
  response: LinesView,
} as const satisfies RouteSpec;

/** The billing report routes, mounted at `/billing` (beside the export's). */
export const REPORT_ROUTES: RouteGroup = { base: "/billing", routes: [getSummary, getLines] };

/** The billing reports as a sub-app: grouped totals and paginated lines. */
export function reportsApp(records: RatedRecordStore): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  handle(app, getSummary, async (c) => {
    // group_by comes comma-separated or repeated (the document's form style, or a client's default).
    const groups = c.req.queries("group_by") ?? [];
    const query = groups.length > 1 ? { ...c.req.query(), group_by: groups.join(",") } : c.req.query();
    const q = parse(SummaryParams, query, "query");
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

  handle(app, getLines, async (c) => {
    const q = parse(LinesParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const pageSize = q.page_size ?? DEFAULT_PAGE_SIZE;
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

  return app;
}
