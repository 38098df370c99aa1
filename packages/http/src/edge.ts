import { parseWith } from "@latch/core/adapter";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { BillingEnv } from "./auth.js";
import { ProblemError } from "./problem.js";

// ── request ids ──────────────────────────────────────────────────────────────

/**
 * An incoming `X-Request-Id` is kept only when it matches this: 1–128 characters of
 * `A–Z a–z 0–9 _ . : -` (a UUID, a ULID, a trace id). Anything else (too long, spaces, quotes,
 * control characters) is replaced by a fresh UUID, so a log line or a header never carries
 * what a client smuggled in.
 */
export const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The incoming `X-Request-Id` when it is safe, else a new random UUID. */
export function requestIdFor(incoming: string | undefined): string {
  return incoming !== undefined && SAFE_REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/**
 * Gives every request an id (`c.get("requestId")`) and every response an `X-Request-Id`
 * header: the caller's, when {@link SAFE_REQUEST_ID} accepts it, or a new UUID.
 */
export function requestId(): MiddlewareHandler<BillingEnv> {
  return async (c, next) => {
    const id = requestIdFor(c.req.header("x-request-id"));
    c.set("requestId", id);
    await next();
    try {
      c.res.headers.set("x-request-id", id);
    } catch {
      // Immutable headers (a response passed through from elsewhere): copy it once.
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("x-request-id", id);
    }
  };
}

// ── 5xx reporting ────────────────────────────────────────────────────────────

/** What {@link BillingErrorHook} is told about the request that failed. */
export interface BillingErrorInfo {
  requestId: string;
  method: string;
  /** The path only (no query string). */
  path: string;
  /** The status answered (5xx), or 200 for an export that failed after it started streaming. */
  status: number;
}

/** Called once for every 5xx the billing app answers (and every export that fails mid-stream). */
export type BillingErrorHook = (error: unknown, info: BillingErrorInfo) => void;

/**
 * The default {@link BillingErrorHook}: one line of JSON on `console.error`, with the request id,
 * method, path, status and the error's `name` and `code` only; never its message, stack,
 * headers, query or body, which may hold keys or customer data.
 *
 * @example
 * // {"level":"error","msg":"request failed","request_id":"7d0c…","method":"GET","path":"/billing/lines","status":500,"error":{"name":"Error","code":"ECONNREFUSED"}}
 */
export const logBillingError: BillingErrorHook = (error, info) => {
  console.error(errorLogLine(error, info));
};

/** The line {@link logBillingError} writes. */
export function errorLogLine(error: unknown, info: BillingErrorInfo): string {
  const e = (typeof error === "object" && error !== null ? error : {}) as { name?: unknown; code?: unknown };
  const code = e.code;
  return JSON.stringify({
    level: "error",
    msg: "request failed",
    request_id: info.requestId,
    method: info.method,
    path: info.path,
    status: info.status,
    error: {
      name: typeof e.name === "string" ? e.name.slice(0, 64) : typeof error,
      ...(typeof code === "string" || typeof code === "number" ? { code: String(code).slice(0, 64) } : {}),
    },
  });
}

/** Calls `hook`; a hook that throws is ignored (reporting never changes the answer). */
export function reportError(
  hook: BillingErrorHook,
  error: unknown,
  c: Context<BillingEnv>,
  status: number,
): void {
  try {
    hook(error, {
      requestId: c.get("requestId") ?? "",
      method: c.req.method,
      path: c.req.path,
      status,
    });
  } catch {
    // A failing hook must not turn into a second error.
  }
}

// ── request size limits ──────────────────────────────────────────────────────

/**
 * Size limits checked before authentication and before any body is read (bytes):
 *
 * - `body` (default 1 MiB): `413` when `Content-Length` says more, or when a chunked body
 *   passes it while being read (counted as it streams; at most `body` bytes are held).
 * - `headers` (default 8 KiB, every header's name and value plus 4): `431`. Node's own
 *   parser answers a bare `431` past its `--max-http-header-size` (16 KiB) first.
 * - `path` (default 2,048, as sent, percent-encoded) and `query` (default 4,096, after `?`):
 *   `414`.
 */
export interface RequestLimits {
  body?: number;
  headers?: number;
  path?: number;
  query?: number;
}

const Bytes = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const RequestLimitsSchema = z.strictObject({
  body: Bytes.default(1_048_576),
  headers: Bytes.default(8_192),
  path: Bytes.default(2_048),
  query: Bytes.default(4_096),
});

/** The limits with their defaults filled in; a bad setting fails at start-up, naming it. */
export function resolveLimits(limits: RequestLimits | undefined): Required<RequestLimits> {
  return parseWith(RequestLimitsSchema, limits ?? {}, "createBillingApp options", "limits");
}

function headerBytes(headers: Headers): number {
  let total = 0;
  headers.forEach((value, name) => {
    total += name.length + value.length + 4;
  });
  return total;
}

/** Enforces {@link RequestLimits}; each refusal is a problem (`413`, `414`, `431`). */
export function requestLimits(limits: Required<RequestLimits>): MiddlewareHandler<BillingEnv> {
  const body = bodyLimit({
    maxSize: limits.body,
    onError: () => {
      throw new ProblemError(
        413,
        "content_too_large",
        `The request body is larger than ${limits.body} bytes`,
        {
          headers: { connection: "close" },
        },
      );
    },
  });
  return async (c, next) => {
    if (headerBytes(c.req.raw.headers) > limits.headers) {
      throw new ProblemError(
        431,
        "headers_too_large",
        `The request's header fields are larger than ${limits.headers} bytes`,
      );
    }
    const url = c.req.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const q = url.indexOf("?", start);
    const pathLength = (q === -1 ? url.length : q) - start;
    if (pathLength > limits.path) {
      throw new ProblemError(414, "uri_too_long", `The request path is longer than ${limits.path} bytes`);
    }
    if (q !== -1 && url.length - q - 1 > limits.query) {
      throw new ProblemError(414, "uri_too_long", `The query string is longer than ${limits.query} bytes`);
    }
    return body(c, next);
  };
}
