import type { ApiKeys } from "@latch/core";
import type { RatedRecordStore } from "@latch/core/adapter";
import { Hono } from "hono";
import { apiKeyAuth, type BillingEnv, type FailedAuthOptions, type TestModeData } from "./auth.js";
import {
  type BillingErrorHook,
  logBillingError,
  type RequestLimits,
  reportError,
  requestId,
  requestIdFor,
  requestLimits,
  resolveLimits,
} from "./edge.js";
import { buildOpenApiDocument } from "./openapi.js";
import { notFound, toProblem } from "./problem.js";
import { type BillingCredits, CREDIT_ROUTES, creditsApp } from "./routes/credits.js";
import { EXPORT_ROUTES, exportApp } from "./routes/export.js";
import { KEY_ROUTES, keysApp } from "./routes/keys.js";
import { REPORT_ROUTES, reportsApp } from "./routes/reports.js";
import { USAGE_ROUTES, usageApp } from "./routes/usage.js";

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
  /**
   * `"isolated"` (default): a test-mode key (`latch_test_…`) reads and writes only test-mode
   * data, kept under its owner's test-mode twin (tenant `latch-test:<tenant>`), and sees only
   * test-mode keys; live keys never see test-mode data. `"shared"`: test-mode keys act for
   * their owner like live keys (the behaviour before this option).
   */
  testModeData?: TestModeData;
  /**
   * Request size limits in bytes, checked before authentication and before the body is read:
   * `body` 1 MiB (`413`), `headers` 8 KiB (`431`), `path` 2,048 and `query` 4,096 (`414`).
   */
  limits?: RequestLimits;
  /**
   * Called for every 5xx (with the error, the request id, method, path and status) and for
   * an export that fails after it started streaming. Default {@link logBillingError}: one line
   * of JSON on `console.error`, without secrets.
   */
  onError?: BillingErrorHook;
  /** The failed-authentication limiter (per client); `false` turns it off. */
  failedAuth?: FailedAuthOptions | false;
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
  const limits = resolveLimits(options.limits);
  const onError = options.onError ?? logBillingError;
  const app = new Hono<BillingEnv>();
  let document: unknown;

  app.onError((error, c) => {
    const problem = toProblem(error);
    if (problem.problem.status >= 500) reportError(onError, error, c, problem.problem.status);
    return problem.toResponse(c.get("requestId") ?? requestIdFor(undefined));
  });
  app.notFound((c) => notFound().toResponse(c.get("requestId")));

  // Every request gets an id, then its size is checked: before authentication and before any body is read.
  app.use("*", requestId());
  app.use("*", requestLimits(limits));

  app.get("/openapi.json", (c) => {
    document ??= buildOpenApiDocument({ credits: options.credits !== undefined });
    return c.json(document as Record<string, unknown>);
  });

  const auth = apiKeyAuth(keys, {
    testModeData: options.testModeData ?? "isolated",
    failedAuth: options.failedAuth ?? {},
  });
  app.use("/api/*", auth);
  app.use("/billing/*", auth);

  app.route(KEY_ROUTES.base, keysApp(keys));
  app.route(USAGE_ROUTES.base, usageApp(keys, records));
  app.route(REPORT_ROUTES.base, reportsApp(records));
  app.route(
    EXPORT_ROUTES.base,
    exportApp({ records, keys, pageSize: options.exportPageSize ?? 1_000, onError }),
  );
  if (options.credits !== undefined) {
    app.route(CREDIT_ROUTES.base, creditsApp(options.credits, options.clock ?? Date.now));
  }

  return app;
}
