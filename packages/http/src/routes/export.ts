import { linesToCsv, type RatedUsageRecord } from "@latch/core";
import { API_KEY_SCOPES, type RatedRecordStore } from "@latch/core/adapter";
import { Hono } from "hono";
import type { BillingEnv } from "../auth.js";
import { parseInput as parse } from "../problem.js";
import { lineView } from "../report-views.js";
import { handle, type RouteGroup, type RouteSpec } from "../route.js";
import { ExportParams } from "../schemas.js";
import { filtersFor, ownerOf } from "../subject.js";

const exportLines = {
  method: "get",
  path: "/export",
  summary: "Every billing line in a window, streamed as CSV (RFC 4180, header row) or JSONL",
  scope: API_KEY_SCOPES.billingRead,
  query: ExportParams,
  status: 200,
  response: {
    "text/csv": {
      schema: {
        type: "string",
        contentMediaType: "text/csv",
        description: "RFC 4180 with a header row; one row per Line, the columns of linesToCsv",
      },
    },
    "application/x-ndjson": {
      schema: {
        type: "string",
        contentMediaType: "application/x-ndjson",
        description: "One Line object (JSON) per line, each ending in \n",
      },
      "x-item-schema": { $ref: "#/components/schemas/Line" },
    },
  },
} as const satisfies RouteSpec;

/** The export route, mounted at `/billing`. */
export const EXPORT_ROUTES: RouteGroup = { base: "/billing", routes: [exportLines] };

/**
 * The export as a sub-app: every line of a window as CSV or JSONL, streamed one store page
 * (`pageSize` lines) per pull.
 */
export function exportApp(records: RatedRecordStore, pageSize: number): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  handle(app, exportLines, async (c) => {
    const q = parse(ExportParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const format = q.format ?? "csv";
    const base = { start: q.from, end: q.to, filters: filtersFor(owner, q), limit: pageSize };
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

  return app;
}
