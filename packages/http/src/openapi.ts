import { z } from "zod";
import {
  BalanceParams,
  BalanceView,
  CREDIT_SCOPES,
  CreatedLedgerView,
  CreateGrantBody,
  CreateLedgerBody,
  GrantedView,
  GrantListView,
  GrantPathParams,
  HistoryParams,
  HistoryView,
  LedgerListView,
  LedgerPathParams,
  LedgerView,
  ListLedgersParams,
  ResetLedgerBody,
  ResetView,
  VoidedView,
  VoidGrantBody,
} from "./credit-schemas.js";
import { ProblemSchema } from "./problem.js";
import {
  CreatedKeyView,
  CreateKeyBody,
  ExportParams,
  KeyListView,
  KeyPathParams,
  KeyView,
  LinesParams,
  LinesView,
  ListKeysParams,
  SummaryParams,
  SummaryView,
  UsageParams,
  UsageView,
} from "./schemas.js";

type JsonSchema = Record<string, unknown>;

interface RouteDoc {
  method: "get" | "post" | "delete";
  /** OpenAPI path, `{id}` style. */
  path: string;
  summary: string;
  scope: string;
  query?: z.ZodType;
  params?: z.ZodType;
  body?: z.ZodType;
  status: 200 | 201;
  response: z.ZodType | { [contentType: string]: JsonSchema };
  /** Idempotent create: `201` when created, `200` (same response) when it already existed. */
  idempotent?: boolean;
  /** Extra problem responses (e.g. `409`) with their descriptions. */
  problems?: Record<string, string>;
}

/** Every route of the app, with the schemas that validate it. */
const ROUTES: RouteDoc[] = [
  {
    method: "post",
    path: "/api/billing/keys",
    summary: "Issue an API key for the caller's subject; the secret is in this response only",
    scope: "keys:write",
    body: CreateKeyBody,
    status: 201,
    response: CreatedKeyView,
  },
  {
    method: "get",
    path: "/api/billing/keys",
    summary: "List the caller's API keys (never their secrets), in id order",
    scope: "keys:read",
    query: ListKeysParams,
    status: 200,
    response: KeyListView,
  },
  {
    method: "get",
    path: "/api/billing/keys/{id}",
    summary: "One of the caller's API keys",
    scope: "keys:read",
    params: KeyPathParams,
    status: 200,
    response: KeyView,
  },
  {
    method: "delete",
    path: "/api/billing/keys/{id}",
    summary: "Revoke one of the caller's API keys (idempotent)",
    scope: "keys:write",
    params: KeyPathParams,
    status: 200,
    response: KeyView,
  },
  {
    method: "get",
    path: "/api/billing/usage",
    summary: "The caller's usage in a window, per API key, with a key's quota balance",
    scope: "usage:read",
    query: UsageParams,
    status: 200,
    response: UsageView,
  },
  {
    method: "get",
    path: "/billing/summary",
    summary: "Token, request and cost totals in a window, grouped",
    scope: "billing:read",
    query: SummaryParams,
    status: 200,
    response: SummaryView,
  },
  {
    method: "get",
    path: "/billing/lines",
    summary: "Billing lines in a window, a page at a time (cursor pagination)",
    scope: "billing:read",
    query: LinesParams,
    status: 200,
    response: LinesView,
  },
  {
    method: "get",
    path: "/billing/export",
    summary: "Every billing line in a window, streamed as CSV (RFC 4180, header row) or JSONL",
    scope: "billing:read",
    query: ExportParams,
    status: 200,
    response: {
      "text/csv": { type: "string" },
      "application/x-ndjson": { type: "string", description: "One Line object per line" },
    },
  },
];

const LEDGER = "/api/billing/credits/ledgers/{ledgerId}";
const HIGH_WATERMARK = "Dated before the ledger's high watermark (its latest reset): `high_watermark`";
const CONFLICT = "The id already exists with a different body: `idempotency_conflict`";

/** The credit routes, mounted when the app has a credit ledger. */
const CREDIT_ROUTES: RouteDoc[] = [
  {
    method: "get",
    path: "/api/billing/credits/ledgers",
    summary: "List the caller's credit ledgers (its own subject only), in ledger_id order",
    scope: CREDIT_SCOPES.creditsRead,
    query: ListLedgersParams,
    status: 200,
    response: LedgerListView,
  },
  {
    method: "post",
    path: "/api/billing/credits/ledgers",
    summary: "Create a credit ledger for the caller's subject (idempotent by ledger_id)",
    scope: CREDIT_SCOPES.creditsWrite,
    body: CreateLedgerBody,
    status: 201,
    response: CreatedLedgerView,
    idempotent: true,
    problems: { "409": CONFLICT },
  },
  {
    method: "get",
    path: LEDGER,
    summary: "One of the caller's credit ledgers",
    scope: CREDIT_SCOPES.creditsRead,
    params: LedgerPathParams,
    status: 200,
    response: LedgerView,
  },
  {
    method: "post",
    path: `${LEDGER}/grants`,
    summary: "Grant credits (idempotent by grant_id)",
    scope: CREDIT_SCOPES.creditsWrite,
    params: LedgerPathParams,
    body: CreateGrantBody,
    status: 201,
    response: GrantedView,
    idempotent: true,
    problems: { "409": `${HIGH_WATERMARK}, or ${CONFLICT}` },
  },
  {
    method: "get",
    path: `${LEDGER}/grants`,
    summary: "The ledger's grants, in creation order",
    scope: CREDIT_SCOPES.creditsRead,
    params: LedgerPathParams,
    status: 200,
    response: GrantListView,
  },
  {
    method: "post",
    path: `${LEDGER}/grants/{grantId}/void`,
    summary: "Void a grant from `at` on (the same `at` again is a no-op)",
    scope: CREDIT_SCOPES.creditsWrite,
    params: GrantPathParams,
    body: VoidGrantBody,
    status: 200,
    response: VoidedView,
    problems: {
      "409": `${HIGH_WATERMARK}, or the grant was voided at another time: \`idempotency_conflict\``,
    },
  },
  {
    method: "post",
    path: `${LEDGER}/reset`,
    summary:
      "Start a new period at `at`: grants roll over or expire (the latest reset's `at` again is a no-op)",
    scope: CREDIT_SCOPES.creditsWrite,
    params: LedgerPathParams,
    body: ResetLedgerBody,
    status: 200,
    response: ResetView,
    problems: { "409": HIGH_WATERMARK },
  },
  {
    method: "get",
    path: `${LEDGER}/balance`,
    summary: "Balances per feature and per grant at a time (exact decimal strings)",
    scope: CREDIT_SCOPES.creditsRead,
    params: LedgerPathParams,
    query: BalanceParams,
    status: 200,
    response: BalanceView,
  },
  {
    method: "get",
    path: `${LEDGER}/history`,
    summary: "Grants, voids, resets and usage per grant in a window, a page at a time (cursor pagination)",
    scope: CREDIT_SCOPES.creditsRead,
    params: LedgerPathParams,
    query: HistoryParams,
    status: 200,
    response: HistoryView,
  },
];

function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const out = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
    target: "draft-2020-12",
  }) as JsonSchema;
  delete out.$schema;
  // Named schemas (meta id) land in $defs; they become components, referenced from every use.
  return JSON.parse(JSON.stringify(out).replaceAll('"#/$defs/', '"#/components/schemas/')) as JsonSchema;
}

/** A request schema's properties as OpenAPI parameters. */
function parameters(schema: z.ZodType, where: "query" | "path"): JsonSchema[] {
  const json = jsonSchema(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" ? { description } : {}),
      schema: rest,
    };
  });
}

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

/**
 * The OpenAPI 3.1 document of the billing app, generated from the zod schemas that validate
 * its requests (zod's own JSON Schema output, draft 2020-12, which OpenAPI 3.1 uses). With
 * `credits: true` it lists the credit routes too (as `createBillingApp({ credits })` serves).
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
  for (const route of options.credits === true ? [...ROUTES, ...CREDIT_ROUTES] : ROUTES) {
    const content =
      route.response instanceof z.ZodType
        ? { "application/json": { schema: named(route.response) } }
        : Object.fromEntries(Object.entries(route.response).map(([type, schema]) => [type, { schema }]));
    const operation: Record<string, unknown> = {
      summary: route.summary,
      description: `Needs an API key with the scope \`${route.scope}\`.`,
      operationId: `${route.method}${route.path
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
        "400": problemResponse("Bad input; `invalid-params` names each field"),
        "401": problemResponse("Missing, malformed, unknown, revoked or expired API key"),
        "403": problemResponse("The API key lacks the scope"),
        "404": problemResponse("No such resource for this caller (including another tenant's)"),
        ...Object.fromEntries(
          Object.entries(route.problems ?? {}).map(([status, text]) => [status, problemResponse(text)]),
        ),
      },
    };
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method] = operation;
  }
  named(ProblemSchema);

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
          responses: { "200": { description: "OpenAPI 3.1 document", content: { "application/json": {} } } },
        },
      },
    },
    components: {
      schemas: components,
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
