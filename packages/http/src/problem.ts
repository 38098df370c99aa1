import { LatchError, type LatchValidationError } from "@latch/core";
import type { HighWatermarkError } from "@latch/core/errors";
import { z } from "zod";

/** One bad input field of a 400 problem: the query parameter, path parameter or body path. */
export interface InvalidParam {
  /** `group_by`, `page_size`, `quota.limit`, … */
  name: string;
  /** Where the field was: `query`, `path` or `body`. */
  in: "query" | "path" | "body";
  reason: string;
}

/**
 * An RFC 9457 problem detail (`application/problem+json`). `type` is a stable URN per kind
 * (`urn:latch:problem:<code>`); match on it, never on `detail`. A 400 lists every bad field
 * in `invalid-params` (the member name the RFC's own example uses).
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  "invalid-params"?: InvalidParam[];
  /** On a `high_watermark` problem (409): the ledger's latest reset (ISO 8601 UTC). */
  high_watermark?: string;
  /** The request's id, also in the `X-Request-Id` response header and the error log line. */
  request_id?: string;
}

/** The zod schema of {@link Problem}, used for the OpenAPI document. */
export const ProblemSchema = z
  .object({
    type: z.string().meta({ example: "urn:latch:problem:invalid_input" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    "invalid-params": z
      .array(z.object({ name: z.string(), in: z.enum(["query", "path", "body"]), reason: z.string() }))
      .optional(),
    high_watermark: z
      .string()
      .optional()
      .meta({ description: "On a high_watermark problem: the ledger's latest reset, ISO 8601 UTC" }),
    request_id: z
      .string()
      .optional()
      .meta({ description: "The request's id (as in the X-Request-Id response header and the error log)" }),
  })
  .meta({
    id: "Problem",
    description: "RFC 9457 problem details; open to extension members, which a client keeps or ignores",
  });

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** A problem to answer with; throw it from a handler or middleware. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    detail: string,
    extra: {
      invalidParams?: InvalidParam[];
      headers?: Record<string, string>;
      highWatermark?: string;
    } = {},
  ) {
    super(detail);
    this.name = "ProblemError";
    this.problem = {
      type: `urn:latch:problem:${code}`,
      title: TITLES[status] ?? "Error",
      status,
      detail,
      ...(extra.invalidParams === undefined ? {} : { "invalid-params": extra.invalidParams }),
      ...(extra.highWatermark === undefined ? {} : { high_watermark: extra.highWatermark }),
    };
    this.headers = extra.headers ?? {};
  }

  /** The problem as a response; with `requestId`, in its `request_id` member and `X-Request-Id` header. */
  toResponse(requestId?: string): Response {
    const problem = requestId === undefined ? this.problem : { ...this.problem, request_id: requestId };
    return new Response(JSON.stringify(problem), {
      status: this.problem.status,
      headers: {
        "content-type": "application/problem+json",
        ...this.headers,
        ...(requestId === undefined ? {} : { "x-request-id": requestId }),
      },
    });
  }
}

/** A 404 that says nothing about what was asked for (another tenant's resource included). */
export function notFound(): ProblemError {
  return new ProblemError(404, "not_found", "No such resource");
}

/** Parses a query, path or body with `schema`; a 400 naming each bad field otherwise. */
export function parseInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: InvalidParam["in"],
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw fromZod(result.error, where);
  return result.data;
}

/** A request's JSON body; a 400 naming `(body)` when it is not JSON. */
export async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw invalidInput([{ name: "(body)", in: "body", reason: "expected a JSON object" }]);
  }
}

/** A 400 naming each bad field; `detail` names the first. */
export function invalidInput(params: InvalidParam[]): ProblemError {
  const first = params[0];
  const more = params.length > 1 ? ` (and ${params.length - 1} more)` : "";
  const detail = first === undefined ? "Invalid input" : `${first.name}: ${first.reason}${more}`;
  return new ProblemError(400, "invalid_input", detail, { invalidParams: params });
}

/**
 * A field name as the client sent it (an unknown parameter, a map key) when it is a plain name;
 * anything else (U+0000, markup, 5,000 characters) is never echoed back.
 */
function plain(segment: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(segment) ? segment : "(key)";
}

/** zod issues → invalid params; messages only, never the received value. */
export function fromZod(error: z.ZodError, where: InvalidParam["in"]): ProblemError {
  const bodyPath = (path: readonly PropertyKey[]) => path.map((p) => plain(String(p))).join(".");
  return invalidInput(
    error.issues.flatMap((issue) => {
      // An unknown parameter or body field is named itself.
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((key) => ({
          name: where === "body" ? bodyPath([...issue.path, key]) : plain(key),
          in: where,
          reason: "unknown field",
        }));
      }
      // A bad key of a map (metadata): the map is named, with what is wrong with the key.
      if (issue.code === "invalid_key") {
        return [
          {
            name: bodyPath(issue.path.slice(0, -1)) || "(body)",
            in: where,
            reason: `a key: ${issue.issues[0]?.message ?? issue.message}`,
          },
        ];
      }
      return [
        {
          // A query parameter is named as sent (`group_by`, not `group_by.1`); a body field by its path.
          name:
            where === "body"
              ? bodyPath(issue.path) || "(body)"
              : issue.path[0] === undefined
                ? "(query)"
                : plain(String(issue.path[0])),
          in: where,
          reason: issue.message,
        },
      ];
    }),
  );
}

/** Store field names → the HTTP names of the same fields. */
const HTTP_NAMES: Record<string, string> = {
  start: "from",
  end: "to",
  limit: "page_size",
  cursor: "cursor",
};

/** A store's camelCase field path as the wire's snake_case one (`rollover.maxAmount` → `rollover.max_amount`). */
export function snakePath(path: string): string {
  return path
    .split(".")
    .map((segment) => segment.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))
    .join(".");
}

/**
 * Turns an error thrown below the routes into a problem: a `LatchValidationError` from a
 * store (e.g. a forged cursor) is a 400 naming the HTTP field; `high_watermark` (a credit
 * grant, void or reset dated before the ledger's latest reset), `idempotency_conflict` (an id
 * reused with another body) and `hold_already_resolved` are 409s; `quota_unavailable` and
 * `store_busy` (PostgreSQL gave up on a transaction: a lock or statement timeout) are 503s with
 * `Retry-After`; anything else is a 500 that says nothing about the cause.
 */
export function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  if (LatchError.isInstance(error) && error.code === "invalid_input") {
    const issues = (error as LatchValidationError).issues ?? [];
    return invalidInput(
      issues.map((issue) => {
        const head = issue.path.split(".")[0] ?? "";
        return { name: HTTP_NAMES[head] ?? issue.path, in: "query", reason: issue.message };
      }),
    );
  }
  if (LatchError.isInstance(error) && error.code === "high_watermark") {
    const { field, highWatermark } = error as HighWatermarkError;
    return new ProblemError(
      409,
      "high_watermark",
      `${snakePath(field)}: before the high watermark ${highWatermark} (the ledger's latest reset); nothing may be granted, voided or reset before it`,
      { highWatermark },
    );
  }
  if (LatchError.isInstance(error) && error.code === "idempotency_conflict") {
    return new ProblemError(409, "idempotency_conflict", "This id already exists with a different body");
  }
  if (LatchError.isInstance(error) && error.code === "hold_already_resolved") {
    return new ProblemError(409, "hold_already_resolved", "This hold is already resolved");
  }
  if (LatchError.isInstance(error) && error.code === "store_busy") {
    return new ProblemError(503, "store_busy", "The store is busy; try again", {
      headers: { "retry-after": "1" },
    });
  }
  if (LatchError.isInstance(error) && error.code === "quota_unavailable") {
    return new ProblemError(503, "quota_unavailable", "The quota store is unavailable; try again", {
      headers: { "retry-after": "1" },
    });
  }
  return new ProblemError(500, "internal", "The server could not answer this request");
}
