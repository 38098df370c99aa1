import { type ApiKeys, linesToCsv, type RatedUsageRecord } from "@latch/core";
import { API_KEY_SCOPES, type RatedRecordStore } from "@latch/core/adapter";
import { csvRow } from "@latch/core/export";
import { Hono } from "hono";
import { type BillingEnv, callerKey } from "../auth.js";
import { type BillingErrorHook, reportError } from "../edge.js";
import { type Problem, ProblemError, parseInput as parse, toProblem } from "../problem.js";
import { lineView } from "../report-views.js";
import { handle, type RouteGroup, type RouteSpec } from "../route.js";
import { ExportParams } from "../schemas.js";
import { filtersFor, ownerOf } from "../subject.js";

const exportLines = {
  method: "get",
  path: "/export",
  summary:
    "Every billing line in a window, streamed as CSV (RFC 4180, header row) or JSONL; an export cut short ends with an error line",
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

/** The first field of the CSV row that ends an export cut short (see {@link exportTrailer}). */
export const CSV_ERROR_MARK = "#error";

/**
 * The last line of an export that could not finish (its key was revoked or expired while it
 * streamed, or the store failed): JSONL `{"error": <problem>}`; CSV a row of the header's
 * width whose first field is `#error`, then the problem's `type`, `status`, `detail` and
 * `request_id`, the other fields empty. A complete export never has such a line.
 */
export function exportTrailer(format: "csv" | "jsonl", problem: Problem, width: number): string {
  if (format === "jsonl") return `${JSON.stringify({ error: problem })}\n`;
  const fields = [
    CSV_ERROR_MARK,
    problem.type,
    String(problem.status),
    problem.detail,
    problem.request_id ?? "",
  ];
  while (fields.length < width) fields.push("");
  return csvRow(fields);
}

export interface ExportAppOptions {
  records: RatedRecordStore;
  /** Re-checks the caller's key before every page after the first. */
  keys: ApiKeys;
  /** Lines per store page. */
  pageSize: number;
  /** Told about a store failure after the stream started. */
  onError: BillingErrorHook;
}

/**
 * The export as a sub-app: every line of a window as CSV or JSONL, streamed one store page
 * (`pageSize` lines) per pull. Before each page after the first, the caller's key is read
 * again (`ApiKeys.recheck`): revoked or expired ⇒ the stream ends with {@link exportTrailer}'s
 * `401` line instead of more rows. A store failure mid-stream ends it with a `500` line.
 */
export function exportApp(options: ExportAppOptions): Hono<BillingEnv> {
  const { records, keys, pageSize, onError } = options;
  const app = new Hono<BillingEnv>();

  handle(app, exportLines, async (c) => {
    const q = parse(ExportParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const format = q.format ?? "csv";
    const base = { start: q.from, end: q.to, filters: filtersFor(owner, q), limit: pageSize };
    // The first page is read before answering, so a store error is still a proper problem.
    let page = await records.lines(base, c.req.raw.signal);
    const header = linesToCsv([]);
    const width = header.split(",").length;
    const key = callerKey(c);
    const requestId = c.get("requestId");
    const encoder = new TextEncoder();
    let started = false;
    let done = false;
    const trailer = (error: ProblemError) =>
      encoder.encode(
        exportTrailer(
          format,
          requestId === undefined ? error.problem : { ...error.problem, request_id: requestId },
          width,
        ),
      );
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
          done = true; // until this page is in
          try {
            const again = await keys.recheck(key);
            if (!again.ok) {
              controller.enqueue(
                trailer(
                  new ProblemError(
                    401,
                    "unauthorized",
                    "The API key was revoked or expired during the export",
                  ),
                ),
              );
              controller.close();
              return;
            }
            const cursor: string = page.next as string;
            page = await records.lines({ ...base, cursor });
          } catch (error) {
            const problem = toProblem(error);
            reportError(onError, error, c, 200);
            controller.enqueue(trailer(problem));
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(render(page.items)));
          if (page.next !== undefined) done = false;
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
