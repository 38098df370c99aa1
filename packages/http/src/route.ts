import type { Context, Hono } from "hono";
import type { z } from "zod";
import { type BillingEnv, requireScope } from "./auth.js";

/** Items per page when a listing route is not given `page_size` (`limit` for keys). */
export const DEFAULT_PAGE_SIZE = 100;

/** A JSON Schema object (as OpenAPI 3.1 embeds it). */
export type JsonSchema = Record<string, unknown>;

/**
 * One route of the billing API: what serves it (method, path, scope) and what documents it
 * (summary, schemas, responses). A sub-app registers its handlers from these and
 * `buildOpenApiDocument` describes them, so the two cannot disagree.
 */
export interface RouteSpec {
  method: "get" | "post" | "delete";
  /** Relative to the sub-app's mount point, OpenAPI style: `/`, `/{id}`, `/{ledgerId}/grants`. */
  path: string;
  /** The scope the caller's key needs (checked by `requireScope`, listed in the description). */
  scope: string;
  summary: string;
  query?: z.ZodType;
  params?: z.ZodType;
  body?: z.ZodType;
  status: 200 | 201;
  /** A zod schema (JSON), or JSON Schemas by content type (a streamed body). */
  response: z.ZodType | { [contentType: string]: JsonSchema };
  /** Idempotent create: `201` when created, `200` (same response) when it already existed. */
  idempotent?: boolean;
  /** Extra problem responses (e.g. `409`) with their descriptions. */
  problems?: Record<string, string>;
}

/** A sub-app's route list and the path it is mounted at (`app.route(base, subApp)`). */
export interface RouteGroup {
  base: string;
  routes: readonly RouteSpec[];
}

/** The route's full path, OpenAPI style (`/api/billing/keys/{id}`). */
export function fullPath(base: string, route: RouteSpec): string {
  return route.path === "/" ? base : `${base}${route.path}`;
}

/** A route handler of the billing app (the caller's key is on the context). */
export type RouteHandler = (c: Context<BillingEnv>) => Response | Promise<Response>;

/** Registers `handler` for `route` on a sub-app, behind the route's scope. */
export function handle(app: Hono<BillingEnv>, route: RouteSpec, handler: RouteHandler): void {
  app.on(
    route.method.toUpperCase(),
    route.path.replace(/\{(\w+)\}/g, ":$1"),
    requireScope(route.scope),
    handler,
  );
}
