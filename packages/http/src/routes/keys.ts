import type { ApiKeyRecord, ApiKeys } from "@latch/core";
import { API_KEY_SCOPES } from "@latch/core/adapter";
import { Hono } from "hono";
import type { z } from "zod";
import { type BillingEnv, callerKey } from "../auth.js";
import {
  invalidInput,
  notFound,
  ProblemError,
  parseInput as parse,
  readJson,
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
} from "../schemas.js";
import { ownerOf, subjectWire } from "../subject.js";

const createKey = {
  method: "post",
  path: "/",
  summary: "Issue an API key for the caller's subject; the secret is in this response only",
  scope: API_KEY_SCOPES.keysWrite,
  body: CreateKeyBody,
  status: 201,
  response: CreatedKeyView,
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
} as const satisfies RouteSpec;

/** The API key routes, mounted at `/api/billing/keys`. */
export const KEY_ROUTES: RouteGroup = {
  base: "/api/billing/keys",
  routes: [createKey, listKeys, getKey, revokeKey],
};

function keyView(key: ApiKeyRecord): z.output<typeof KeyView> {
  // The owner of a key never names a key itself.
  const { apiKeyId: _, ...owner } = key.owner;
  return {
    id: key.id,
    name: key.name,
    owner: subjectWire(owner) as z.output<typeof KeyView>["owner"],
    scopes: key.scopes,
    mode: key.mode,
    ...(key.quota === undefined ? {} : { quota: key.quota }),
    created_at: key.createdAt,
    ...(key.expiresAt === undefined ? {} : { expires_at: key.expiresAt }),
    ...(key.revokedAt === undefined ? {} : { revoked_at: key.revokedAt }),
    ...(key.lastUsedAt === undefined ? {} : { last_used_at: key.lastUsedAt }),
  };
}

/** The API key routes as a sub-app: issue, list, read and revoke the caller's own keys. */
export function keysApp(keys: ApiKeys): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>();

  handle(app, createKey, async (c) => {
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

  handle(app, listKeys, async (c) => {
    const q = parse(ListKeysParams, c.req.query(), "query");
    const owner = ownerOf(c, q.tenant_id);
    const page = await keys.list(owner, {
      limit: q.limit ?? DEFAULT_PAGE_SIZE,
      ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
    });
    return c.json({
      items: page.items.map(keyView),
      ...(page.next === undefined ? {} : { next_cursor: page.next }),
    });
  });

  handle(app, getKey, async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const key = await keys.get(callerKey(c).owner, id);
    if (key === undefined) throw notFound();
    return c.json(keyView(key));
  });

  handle(app, revokeKey, async (c) => {
    const { id } = parse(KeyPathParams, c.req.param(), "path");
    const key = await keys.revoke(callerKey(c).owner, id);
    if (key === undefined) throw notFound();
    return c.json(keyView(key));
  });

  return app;
}
