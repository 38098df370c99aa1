/**
 * @latch/http: the Latch billing HTTP API as a Hono app. API keys behind a Bearer
 * middleware (scoped, quota'd, revocable), usage and billing reports scoped to the caller's
 * tenant, RFC 9457 errors and an OpenAPI 3.1 document generated from the same zod schemas.
 */
export { type BillingAppOptions, createBillingApp } from "./app.js";
export {
  type ApiKeyAuthOptions,
  apiKeyAuth,
  type BillingEnv,
  type BillingVariables,
  callerKey,
  callerSubject,
  type FailedAuthOptions,
  type KeyQuotaOptions,
  keyQuota,
  keySubject,
  peerClient,
  requireScope,
  type TestModeData,
} from "./auth.js";
export * from "./credit-schemas.js";
export {
  type BillingErrorHook,
  type BillingErrorInfo,
  logBillingError,
  type RequestLimits,
  SAFE_REQUEST_ID,
} from "./edge.js";
export { buildOpenApiDocument } from "./openapi.js";
export { type InvalidParam, type Problem, ProblemError, ProblemSchema, toProblem } from "./problem.js";
export { lineView } from "./report-views.js";
export type { BillingCredits } from "./routes/credits.js";
export { CSV_ERROR_MARK } from "./routes/export.js";
export * from "./schemas.js";
