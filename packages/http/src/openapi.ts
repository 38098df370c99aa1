import { z } from "zod";
import { ProblemSchema } from "./problem.js";
import { fullPath, type JsonSchema, type RouteGroup, type RouteSpec, WIRE_PARAMETERS } from "./route.js";
import { CREDIT_ROUTES } from "./routes/credits.js";
import { EXPORT_ROUTES } from "./routes/export.js";
import { KEY_ROUTES } from "./routes/keys.js";
import { REPORT_ROUTES } from "./routes/reports.js";
import { USAGE_ROUTES } from "./routes/usage.js";

/** The sub-apps' route lists in the document's order; the credit routes come last, when served. */
const BILLING_ROUTES: readonly RouteGroup[] = [KEY_ROUTES, USAGE_ROUTES, REPORT_ROUTES, EXPORT_ROUTES];

function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const out = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
    target: "draft-2020-12",
    // A query parameter parsed from text is shown as what it means (an integer, an array).
    override: (ctx) => {
      const wire = WIRE_PARAMETERS.get(ctx.zodSchema as unknown as z.ZodType);
      if (wire === undefined) return;
      for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as JsonSchema)[key];
      Object.assign(ctx.jsonSchema, structuredClone(wire.schema));
    },
  }) as JsonSchema;
  delete out.$schema;
  // Named schemas (meta id) land in $defs; they become components, referenced from every use.
  return JSON.parse(JSON.stringify(out).replaceAll('"#/$defs/', '"#/components/schemas/')) as JsonSchema;
}

/** The wire form registered for a request field (under its `.optional()`), if any. */
function wireOf(schema: z.ZodType, name: string) {
  let field = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType>)[name] : undefined;
  while (field instanceof z.ZodOptional) field = field.unwrap() as z.ZodType;
  return field === undefined ? undefined : WIRE_PARAMETERS.get(field);
}

/** A request schema's properties as OpenAPI parameters. */
function parameters(schema: z.ZodType, where: "query" | "path"): JsonSchema[] {
  const json = jsonSchema(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    const wire = wireOf(schema, name);
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" ? { description } : {}),
      ...(wire?.style === undefined ? {} : { style: wire.style }),
      ...(wire?.explode === undefined ? {} : { explode: wire.explode }),
      schema: rest,
    };
  });
}

const RETRY_AFTER = {
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
};

const problemResponse = (description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers === undefined ? {} : { headers }),
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

/**
 * The problems every authenticated operation can answer (beside its own, such as `409`): bad
 * input, authentication and scope, not found, the edge's size limits, rate limiting, failures.
 * Each is a shared component response, referenced by status.
 */
const SHARED_PROBLEMS = {
  "400": ["BadRequest", problemResponse("Bad input; `invalid-params` names each field")],
  "401": [
    "Unauthorized",
    problemResponse("Missing, malformed, unknown, revoked or expired API key", {
      "WWW-Authenticate": { description: 'Bearer realm="latch"', schema: { type: "string" } },
    }),
  ],
  "403": [
    "Forbidden",
    problemResponse("The API key lacks the scope, or may not grant what the request asks"),
  ],
  "404": ["NotFound", problemResponse("No such resource for this caller (including another tenant's)")],
  "413": ["ContentTooLarge", problemResponse("The request body is larger than the server accepts")],
  "414": ["UriTooLong", problemResponse("The URI (path and query) is longer than the server accepts")],
  "429": [
    "TooManyRequests",
    problemResponse(
      "Too many requests (a key's quota, or repeated failed authentication); see Retry-After when present",
      RETRY_AFTER,
    ),
  ],
  "431": [
    "HeaderFieldsTooLarge",
    problemResponse("The request's header fields are larger than the server accepts"),
  ],
  "500": [
    "InternalError",
    problemResponse("The server could not answer; the problem says nothing of the cause"),
  ],
  "503": [
    "Unavailable",
    problemResponse("A store is unavailable or busy; retry after Retry-After", RETRY_AFTER),
  ],
} as const;

/** A shared problem response by status, as a reference. */
const sharedProblem = (status: keyof typeof SHARED_PROBLEMS) => ({
  $ref: `#/components/responses/${SHARED_PROBLEMS[status][0]}`,
});

/** Every problem `route` can answer: the shared ones and its own (its descriptions win). */
function problemResponses(route: RouteSpec): Record<string, unknown> {
  return {
    ...Object.fromEntries(
      Object.keys(SHARED_PROBLEMS).map((status) => [
        status,
        sharedProblem(status as keyof typeof SHARED_PROBLEMS),
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(route.problems ?? {}).map(([status, text]) => [status, problemResponse(text)]),
    ),
  };
}

/**
 * The OpenAPI 3.1 document of the billing app, generated from its sub-apps' route lists and the
 * zod schemas that validate their requests (zod's own JSON Schema output, draft 2020-12, which
 * OpenAPI 3.1 uses). With `credits: true` it lists the credit routes too (as
 * `createBillingApp({ credits })` serves).
 */
export function buildOpenApiDocument(options: { credits?: boolean } = {}): Record<string, unknown> {
  const components: Record<string, JsonSchema> = {};
  /** Moves `$defs` (named schemas) into components; returns the schema itself. */
  const lift = (schema: JsonSchema): JsonSchema => {
    const defs = schema.$defs as Record<string, JsonSchema> | undefined;
    if (defs !== undefined) {
      for (const [id, def] of Object.entries(defs)) components[id] = def;
      delete schema.$defs;
    }
    return schema;
  };
  const named = (schema: z.ZodType): JsonSchema => {
    const json = lift(jsonSchema(schema, "output"));
    const id = (schema.meta() as { id?: string } | undefined)?.id;
    if (id === undefined) return json;
    const ref = `#/components/schemas/${id}`;
    // zod either inlines the root (we register it) or already listed it in $defs (lifted above).
    if (json.$ref !== ref) components[id] = json;
    return { $ref: ref };
  };

  const paths: Record<string, Record<string, unknown>> = {};
  const groups = options.credits === true ? [...BILLING_ROUTES, CREDIT_ROUTES] : BILLING_ROUTES;
  const routes = groups.flatMap((group) =>
    group.routes.map((route) => ({ route, path: fullPath(group.base, route) })),
  );
  for (const { route, path } of routes) {
    const content =
      route.response instanceof z.ZodType
        ? { "application/json": { schema: named(route.response) } }
        : structuredClone(route.response);
    const operation: Record<string, unknown> = {
      summary: route.summary,
      description: `Needs an API key with the scope \`${route.scope}\`.`,
      operationId: `${route.method}${path
        .replace(/[{}]/g, "")
        .replace(/(^|\/)(\w)/g, (_m, _s, c: string) => c.toUpperCase())
        .replace(/[^A-Za-z0-9]/g, "")}`,
      security: [{ bearer: [] }],
      parameters: [
        ...(route.params === undefined ? [] : parameters(route.params, "path")),
        ...(route.query === undefined ? [] : parameters(route.query, "query")),
      ],
      ...(route.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { "application/json": { schema: lift(jsonSchema(route.body, "input")) } },
            },
          }),
      responses: {
        [String(route.status)]: { description: route.status === 201 ? "Created" : "OK", content },
        ...(route.idempotent === true
          ? { "200": { description: "Already existed with the same body (nothing changed)", content } }
          : {}),
        ...problemResponses(route),
      },
    };
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[route.method] = operation;
  }
  named(ProblemSchema);
  // Open to extension members (RFC 9457 §3.2): a client must keep what it does not know.
  (components.Problem as JsonSchema).additionalProperties = true;

  return {
    openapi: "3.1.0",
    info: {
      title: "Latch billing API",
      version: "1.0.0",
      description: "API keys, usage and billing reports, and prepaid credits, of Latch (@latch/http).",
    },
    servers: [{ url: "/" }],
    paths: {
      ...paths,
      "/openapi.json": {
        get: {
          summary: "This document",
          operationId: "getOpenApi",
          security: [],
          responses: {
            "200": {
              description: "OpenAPI 3.1 document",
              content: { "application/json": { schema: { type: "object" } } },
            },
            "414": sharedProblem("414"),
            "431": sharedProblem("431"),
            "500": sharedProblem("500"),
          },
        },
      },
    },
    components: {
      schemas: components,
      responses: Object.fromEntries(Object.values(SHARED_PROBLEMS)),
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "A Latch API key: latch_live_… or latch_test_…",
        },
      },
    },
  };
}
