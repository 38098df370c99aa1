import type { Context, Hono } from "hono";
import { z } from "zod";
import { type BillingEnv, requireScope } from "./auth.js";

/** Items per page when a listing route is not given `page_size` (`limit` for keys). */
export const DEFAULT_PAGE_SIZE = 100;

/** A JSON Schema object (as OpenAPI 3.1 embeds it). */
export type JsonSchema = Record<string, unknown>;

/** How the document shows a query parameter whose wire text zod parses into something else. */
export interface WireParameter {
  /** The parameter's JSON Schema (`{ type: "integer" }` for `page_size`, an array for `group_by`). */
  schema: JsonSchema;
  /** OpenAPI serialisation of an array parameter: `form` + `explode: false` is `a,b,c`. */
  style?: "form";
  explode?: boolean;
}

/**
 * Query schemas documented as their parsed type: a query string is text, so zod sees
 * `page_size` as digits and `group_by` as a comma-separated string, but a client should see an
 * integer and an array (and openapi-typescript types them so).
 */
export const WIRE_PARAMETERS = z.registry<WireParameter>();

/** Registers how the document shows `schema` (see {@link WIRE_PARAMETERS}); returns it. */
export function documentAs<S extends z.ZodType>(schema: S, wire: WireParameter): S {
  WIRE_PARAMETERS.add(schema, wire);
  return schema;
}

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
  /** A zod schema (JSON), or OpenAPI media type objects by content type (a streamed body). */
  response: z.ZodType | { [contentType: string]: MediaType };
  /** Idempotent create: `201` when created, `200` (same response) when it already existed. */
  idempotent?: boolean;
  /** Extra problem responses (e.g. `409`) with their descriptions. */
  problems?: Record<string, string>;
}

/** An OpenAPI media type object of a streamed response. */
export interface MediaType {
  schema: JsonSchema;
  /** For a sequential media type (NDJSON): the schema of each item (OpenAPI 3.2's `itemSchema`). */
  "x-item-schema"?: JsonSchema;
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
