import type { ApiKeyRecord, ApiKeys, BillingSubject } from "@latch/core";
import { API_KEY_SCOPES, type ApiKeyQuota, type QuotaPeriod } from "@latch/core/adapter";
import { PrivilegeExceededError } from "@latch/core/errors";
import { type Context, Hono } from "hono";
import type { z } from "zod";
import { type BillingEnv, callerKey, isolatedTestCaller } from "../auth.js";
import {
  invalidInput,
  notFound,
  ProblemError,
  parseInput as parse,
  readJson,
  snakePath,
  toProblem,
} from "../problem.js";
import { DEFAULT_PAGE_SIZE, handle, type RouteGroup, type RouteSpec } from "../route.js";
import {
  CreatedKeyView,
  CreateKeyBody,
  KeyListView,
  KeyPathParams,
  KeyView,
  ListKeysParams,
  type QuotaBody,
  type QuotaPeriodWire,
} from "../schemas.js";
import { ownTenant, SUBJECT_WIRE, subjectWire } from "../subject.js";

const createKey = {
  method: "post",
  path: "/",
  summary: "Issue an API key for the caller's subject; the secret is in this response only",
  scope: API_KEY_SCOPES.keysWrite,
  body: CreateKeyBody,
  status: 201,
  response: CreatedKeyView,
  problems: {
    "403":
      "The API key lacks the scope, or the new key would exceed it (a scope, quota, expiry, mode or owner beyond the caller key's; the problem names the field)",
  },
} as const satisfies RouteSpec;

const listKeys = {
  method: "get",
  path: "/",
  summary: "List the caller's API keys (never their secrets), in id order",
  scope: API_KEY_SCOPES.keysRead,
  query: ListKeysParams,
  status: 200,
  response: KeyListView,
} as const satisfies RouteSpec;

const getKey = {
  method: "get",
  path: "/{id}",
  summary: "One of the caller's API keys",
  scope: API_KEY_SCOPES.keysRead,
  params: KeyPathParams,
  status: 200,
  response: KeyView,
} as const satisfies RouteSpec;

const revokeKey = {
  method: "delete",
  path: "/{id}",
  summary: "Revoke one of the caller's API keys (idempotent)",
  scope: API_KEY_SCOPES.keysWrite,
  params: KeyPathParams,
  status: 200,
  response: KeyView,
  problems: { "403": "The API key lacks the scope, or a scope of the key to revoke" },
} as const satisfies RouteSpec;

/** The API key routes, mounted at `/api/billing/keys`. */
export const KEY_ROUTES: RouteGroup = {
  base: "/api/billing/keys",
  routes: [createKey, listKeys, getKey, revokeKey],
};

/** A quota period on the wire (snake_case) → core's `QuotaPeriod`. */
function periodFromWire(period: QuotaPeriodWire): QuotaPeriod {
  if ("rolling_ms" in period) return { rollingMs: period.rolling_ms };
  return { every: period.every, ...(period.time_zone === undefined ? {} : { timeZone: period.time_zone }) };
}

/** Core's `QuotaPeriod` → the wire (snake_case). */
export function periodWire(period: QuotaPeriod): QuotaPeriodWire {
  if ("rollingMs" in period) return { rolling_ms: period.rollingMs };
  return { every: period.every, ...(period.timeZone === undefined ? {} : { time_zone: period.timeZone }) };
}

/** A quota from the request body → `ApiKeys.mint`'s. */
function quotaFromWire(quota: z.output<typeof QuotaBody>): ApiKeyQuota {
  const { period, ...rest } = quota;
  return { ...rest, ...(period === undefined ? {} : { period: periodFromWire(period) }) };
}

/** A key's quota on the wire. */
function quotaWire(quota: ApiKeyQuota): z.output<typeof QuotaBody> {
  const { period, ...rest } = quota;
  return { ...rest, ...(period === undefined ? {} : { period: periodWire(period) }) };
}

function keyView(key: ApiKeyRecord): z.output<typeof KeyView> {
  // The owner of a key never names a key itself.
  const { apiKeyId: _, ...owner } = key.owner;
  return {
    id: key.id,
    name: key.name,
    owner: subjectWire(owner) as z.output<typeof KeyView>["owner"],
    scopes: key.scopes,
    mode: key.mode,
    ...(key.quota === undefined ? {} : { quota: quotaWire(key.quota) }),
    created_at: key.createdAt,
    ...(key.expiresAt === undefined ? {} : { expires_at: key.expiresAt }),
    ...(key.revokedAt === undefined ? {} : { revoked_at: key.revokedAt }),
    ...(key.lastUsedAt === undefined ? {} : { last_used_at: key.lastUsedAt }),
    ...(key.createdBy === undefined ? {} : { created_by: key.createdBy }),
  };
}

/**
 * The caller key's own owner (keys are stored under it, also a test-mode key's); a `tenant_id`
 * naming another tenant is a 404.
 */
function keyOwnerOf(c: Context<BillingEnv>, tenantId: string | undefined): BillingSubject {
  if (tenantId !== undefined && !ownTenant(c, tenantId)) throw notFound();
  return callerKey(c).owner;
}

/** Whether the caller may see `key`: an isolated test-mode caller sees test-mode keys only. */
function visible(c: Context<BillingEnv>, key: ApiKeyRecord): boolean {
  return key.mode === "test" || !isolatedTestCaller(c);
}

/** A key beyond the caller's privileges: a 403 naming the wire field (`quota.limit`, `expires_at`, …). */
function privilegeProblem(error: unknown): unknown {
  if (!PrivilegeExceededError.isInstance(error)) return error;
  const name = snakePath(error.field);
  return new ProblemError(403, "privilege_exceeded", `${name}: ${error.reason}`, {
    invalidParams: [{ name, in: "body", reason: error.reason }],
  });
}

/** The API key routes as a sub-app: issue, list, read and revoke the caller's own keys. */
export function keysApp(keys: ApiKeys): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  handle(app, createKey, async (c) => {
    const caller = callerKey(c);
    const body = parse(CreateKeyBody, await readJson(c.req.raw), "body");
    const owner: Record<string, string> = { ...keyOwnerOf(c, body.tenant_id) };
    // The body narrows the owner; a field contradicting the caller's is refused by mint (403).
    for (const [key, wire] of SUBJECT_WIRE) {
      const asked = (body.owner as Record<string, string> | undefined)?.[wire];
      if (asked !== undefined) owner[key] = asked;
    }
    // Least privilege (scopes, quota, expiry, mode, owner within the caller's): ApiKeys.mint.
    const { key, plaintext } = await keys
      .mint(caller, {
        owner: owner as BillingSubject,
        name: body.name,
        scopes: body.scopes,
        ...(body.mode === undefined ? {} : { mode: body.mode }),
        ...(body.quota === undefined ? {} : { quota: quotaFromWire(body.quota) }),
        ...(body.expires_at === undefined ? {} : { expiresAt: body.expires_at }),
      })
      .catch((error: unknown) => {
        const refused = privilegeProblem(error);
        if (refused !== error) throw refused;
        const problem = toProblem(error);
        const params = problem.problem["invalid-params"];
        if (params === undefined) throw problem;
        // Field names of ApiKeys.mint → the body's.
        throw invalidInput(params.map((p) => ({ ...p, in: "body", name: snakePath(p.name) })));
      });
    c.header("cache-control", "no-store");
    return c.json({ key: keyView(key), secret: plaintext }, 201);
  });

  handle(app, listKeys, async (c) => {
    const q = parse(ListKeysParams, c.req.query(), "query");
    const owner = keyOwnerOf(c, q.tenant_id);
    const limit = q.limit ?? DEFAULT_PAGE_SIZE;
    // An isolated test-mode caller sees its test-mode keys only: store pages are read until
    // `limit` of them are found, and the cursor is the last one shown, never a live key's id.
    const items: ApiKeyRecord[] = [];
    let cursor = q.cursor;
    let more = false;
    while (!more) {
      const page = await keys.list(owner, { limit, ...(cursor === undefined ? {} : { cursor }) });
      for (const key of page.items) {
        if (!visible(c, key)) continue;
        if (items.length === limit) {
          more = true;
          break;
        }
        items.push(key);
      }
      if (page.next === undefined) break;
      if (items.length === limit) more = true;
      cursor = page.next;
    }
    const last = items.at(-1);
    return c.json({
      items: items.map(keyView),
      ...(more && last !== undefined ? { next_cursor: last.id } : {}),
    });
  });

  handle(app, getKey, async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const key = await keys.get(callerKey(c).owner, id);
    if (key === undefined || !visible(c, key)) throw notFound();
    return c.json(keyView(key));
  });

  handle(app, revokeKey, async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const caller = callerKey(c);
    const target = await keys.get(caller.owner, id);
    if (target === undefined || !visible(c, target)) throw notFound();
    // A key with a scope the caller lacks (an admin key, for a keys:write-only caller) is a 403.
    const key = await keys.revokeAs(caller, id).catch((error: unknown) => {
      throw privilegeProblem(error);
    });
    if (key === undefined) throw notFound();
    return c.json(keyView(key));
  });

  return app;
}
