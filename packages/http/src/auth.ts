import type { ApiKeyRecord, ApiKeys, BillingSubject } from "@latch/core";
import {
  apiKeyQuotaAccount,
  HoldTtlSchema,
  isTestModeTenant,
  parseWith,
  TEST_MODE_TENANT_MAX,
  testModeSubject,
} from "@latch/core/adapter";
import type { Context, MiddlewareHandler } from "hono";
import { ProblemError } from "./problem.js";

/** What the middlewares put on the Hono context. */
export interface BillingVariables {
  /** The authenticated key. */
  apiKey: ApiKeyRecord;
  /**
   * The subject the key's data lives under: its owner, or for a test-mode key (unless
   * `testModeData: "shared"`) the owner's test-mode twin (`latch-test:<tenant>`). Every
   * usage, report, export and credit route acts for it; record a gateway's usage under it.
   */
  subject: BillingSubject;
  /** Set by a metered handler: the quota units it actually used (see {@link keyQuota}). */
  quotaActual?: number;
}

/** The Hono environment of the billing app and its middlewares. */
export interface BillingEnv {
  Variables: BillingVariables;
}

const BEARER = /^Bearer +([^\s]+) *$/i;

function unauthorized(hadToken: boolean): ProblemError {
  // One answer for every refusal (malformed, unknown, revoked, expired): nothing to probe.
  return new ProblemError(401, "unauthorized", "A valid API key is required (Authorization: Bearer <key>)", {
    headers: {
      "www-authenticate": hadToken ? 'Bearer realm="latch", error="invalid_token"' : 'Bearer realm="latch"',
    },
  });
}

/** Where test-mode keys' data lives: apart from live data (default), or in it (the old behaviour). */
export type TestModeData = "isolated" | "shared";

export interface ApiKeyAuthOptions {
  /**
   * `"isolated"` (default): a test-mode key acts for its owner's test-mode twin (tenant
   * `latch-test:<tenant>`, see `testModeSubject` in `@latch/core/adapter`), so it never reads or
   * writes live data and no live key sees its data. `"shared"`: test-mode keys act for their
   * owner like live keys (the behaviour before this option existed).
   */
  testModeData?: TestModeData;
}

/**
 * The subject `key`'s data lives under (see {@link ApiKeyAuthOptions.testModeData}), or
 * undefined for a key that cannot have one: a live key of a tenant in the reserved test-mode
 * namespace, or a test-mode key whose tenant is too long for it (`ApiKeys` issues neither).
 */
export function keySubject(
  key: ApiKeyRecord,
  testModeData: TestModeData = "isolated",
): BillingSubject | undefined {
  if (testModeData === "shared") return key.owner;
  if (isTestModeTenant(key.owner.tenantId)) return undefined;
  if (key.mode === "live") return key.owner;
  return key.owner.tenantId.length > TEST_MODE_TENANT_MAX ? undefined : testModeSubject(key.owner);
}

/**
 * Bearer authentication: resolves `Authorization: Bearer <key>` through `keys.authenticate`
 * and puts the key on the context (`c.get("apiKey")`), with the subject its data lives under
 * (`c.get("subject")`: a test-mode key's is isolated from live data unless
 * `testModeData: "shared"`). A missing, malformed, unknown, revoked or expired key is a 401
 * problem; a key with a bad checksum is refused before any store lookup.
 *
 * @example
 * app.use("/v1/*", apiKeyAuth(keys));
 */
export function apiKeyAuth(keys: ApiKeys, options: ApiKeyAuthOptions = {}): MiddlewareHandler<BillingEnv> {
  const testModeData = options.testModeData ?? "isolated";
  return async (c, next) => {
    const header = c.req.header("authorization");
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) throw unauthorized(header !== undefined);
    const result = await keys.authenticate(token, c.req.raw.signal);
    if (!result.ok) throw unauthorized(true);
    const subject = keySubject(result.key, testModeData);
    if (subject === undefined) throw unauthorized(true);
    c.set("apiKey", result.key);
    c.set("subject", subject);
    await next();
  };
}

/** The authenticated key, or a 401 when a route was mounted without {@link apiKeyAuth}. */
export function callerKey(c: Context<BillingEnv>): ApiKeyRecord {
  const key = c.get("apiKey");
  if (key === undefined) throw unauthorized(false);
  return key;
}

/** The subject the caller's data lives under (see {@link BillingVariables.subject}). */
export function callerSubject(c: Context<BillingEnv>): BillingSubject {
  const key = callerKey(c);
  return c.get("subject") ?? key.owner;
}

/**
 * Whether the caller is a test-mode key whose data is isolated: it sees test-mode keys only.
 */
export function isolatedTestCaller(c: Context<BillingEnv>): boolean {
  return isTestModeTenant(callerSubject(c).tenantId);
}

/**
 * Requires every scope in `scopes` on the caller's key: a 403 problem naming the missing one.
 *
 * @example
 * app.get("/v1/models", requireScope("gateway:invoke"), handler);
 */
export function requireScope(...scopes: string[]): MiddlewareHandler<BillingEnv> {
  return async (c, next) => {
    const key = callerKey(c);
    const missing = scopes.find((scope) => !key.scopes.includes(scope));
    if (missing !== undefined) {
      throw new ProblemError(403, "insufficient_scope", `This API key lacks the scope ${missing}`, {
        headers: {
          "www-authenticate": `Bearer realm="latch", error="insufficient_scope", scope="${missing}"`,
        },
      });
    }
    await next();
  };
}

export interface KeyQuotaOptions {
  keys: ApiKeys;
  /** Units to reserve for this request (tokens, or millionths of the key's currency). */
  estimate: (c: Context<BillingEnv>) => number | Promise<number>;
  /**
   * How long a hold lives if the request never settles it: whole milliseconds, at most
   * 2,147,483,647 (`HOLD_TTL_MAX_MS`, checked here, not per request). Default 5 minutes.
   */
  ttlMs?: number;
}

/**
 * Enforces the caller key's quota on a route: reserves `estimate` units on the key's quota
 * account before the handler, then commits what the handler reports with
 * `c.set("quotaActual", n)` (or the estimate when it reports nothing and answers < 400), and
 * voids the hold when the handler fails or answers ≥ 400. A key without a quota passes. Out
 * of quota ⇒ 429 problem; quota store down ⇒ 503 (fails closed).
 *
 * @example
 * app.post("/v1/chat", requireScope("gateway:invoke"), keyQuota({ keys, estimate: () => 4_096 }), handler);
 */
export function keyQuota(options: KeyQuotaOptions): MiddlewareHandler<BillingEnv> {
  // A bad setting fails here, at start-up, naming it: never as a 400 blamed on each caller.
  const ttlMs = parseWith(HoldTtlSchema, options.ttlMs ?? 300_000, "keyQuota options", "ttlMs");
  return async (c, next) => {
    const key = callerKey(c);
    const quota = options.keys.quota;
    if (key.quota === undefined) return next();
    if (quota === undefined) {
      throw new ProblemError(503, "quota_unavailable", "No quota store is configured for a key with a quota");
    }
    const amount = await options.estimate(c);
    const holdId = `http:${crypto.randomUUID()}`;
    const granted = await quota.reserve({ holdId, account: apiKeyQuotaAccount(key.id), amount, ttlMs });
    if (!granted.granted) {
      if (granted.reason === "unavailable") {
        throw new ProblemError(503, "quota_unavailable", "The quota store is unavailable; try again", {
          headers: { "retry-after": "1" },
        });
      }
      throw new ProblemError(429, "quota_exceeded", "This API key's quota is used up");
    }
    try {
      await next();
    } catch (error) {
      await quota.void(holdId);
      throw error;
    }
    const actual = c.get("quotaActual");
    if (actual !== undefined) await quota.commit(holdId, actual);
    else if (c.res.status < 400) await quota.commit(holdId, amount);
    else await quota.void(holdId);
  };
}
