/**
 * @latch/http: the Latch billing HTTP API as a Hono app. API keys behind a Bearer
 * middleware (scoped, quota'd, revocable), usage and billing reports scoped to the caller's
 * tenant, RFC 9457 errors and an OpenAPI 3.1 document generated from the same zod schemas.
 */
export { type BillingAppOptions, createBillingApp, lineView } from "./app.js";
export {
  apiKeyAuth,
  type BillingEnv,
  type BillingVariables,
  callerKey,
  type KeyQuotaOptions,
  keyQuota,
  requireScope,
} from "./auth.js";
export * from "./credit-schemas.js";
export type { BillingCredits } from "./credits.js";
export { buildOpenApiDocument } from "./openapi.js";
export { type InvalidParam, type Problem, ProblemError, ProblemSchema, toProblem } from "./problem.js";
export * from "./schemas.js";
