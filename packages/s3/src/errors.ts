import { LatchError } from "@latch/core";
import { ExportError } from "@latch/core/errors";

/** What an S3 failure means for the exporter. */
export type S3Failure =
  /** `If-None-Match: *` lost: an object already exists under the key. */
  | { type: "exists" }
  /** The key does not exist (GET/HEAD). */
  | { type: "missing" }
  /** Worth retrying: 5xx, throttling, a reset or timed-out connection, a conditional-write race. */
  | { type: "retry"; kind: "connection" | "rate_limited"; retryAfterMs?: number; reason: string }
  /** Retrying cannot help. */
  | { type: "fatal"; error: ExportError };

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $response?: { headers?: Record<string, string | undefined> };
  $retryable?: { throttling?: boolean };
}

const THROTTLING = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "ProvisionedThroughputExceededException",
]);

const AUTH = new Set([
  "AccessDenied",
  "Forbidden",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
  "CredentialsProviderError",
]);

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

const NETWORK_NAMES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "NetworkingError",
]);

/** `Retry-After` in ms (seconds or an HTTP date), when the server sent one. */
function retryAfterMs(headers: Record<string, string | undefined> | undefined): number | undefined {
  const value = headers?.["retry-after"];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1_000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Classifies an error thrown by `@aws-sdk/client-s3` (or the network beneath it):
 * 412 ⇒ exists; 404/NoSuchKey ⇒ missing; 409 ConditionalRequestConflict, 5xx, 429, SlowDown
 * and other throttling, resets and timeouts ⇒ retry (`rate_limited` for throttling, else
 * `connection`); 401/403 and credential errors ⇒ `auth`; NoSuchBucket ⇒ `auth` (the bucket
 * cannot be written); other 4xx ⇒ `invalid_data`.
 */
export function classifyS3Error(error: unknown, what: string): S3Failure {
  if (LatchError.isInstance(error)) {
    return { type: "fatal", error: error as ExportError };
  }
  const e = (typeof error === "object" && error !== null ? error : {}) as SdkErrorShape;
  const name = typeof e.name === "string" ? e.name : "";
  const code = typeof e.code === "string" ? e.code : "";
  const status = typeof e.$metadata?.httpStatusCode === "number" ? e.$metadata.httpStatusCode : undefined;
  const message = typeof e.message === "string" && e.message !== "" ? e.message : name || String(error);
  const reason = `${what}: ${name || code || "error"}${status ? ` (HTTP ${status})` : ""}: ${message}`;

  if (status === 412 || name === "PreconditionFailed") return { type: "exists" };
  if (name === "NoSuchKey" || name === "NotFound" || (status === 404 && name !== "NoSuchBucket")) {
    return { type: "missing" };
  }
  if (THROTTLING.has(name) || THROTTLING.has(code) || status === 429 || e.$retryable?.throttling === true) {
    return { type: "retry", kind: "rate_limited", retryAfterMs: retryAfterMs(e.$response?.headers), reason };
  }
  if (name === "ConditionalRequestConflict" || status === 409)
    return { type: "retry", kind: "connection", reason };
  if (status !== undefined && status >= 500) {
    return { type: "retry", kind: "connection", retryAfterMs: retryAfterMs(e.$response?.headers), reason };
  }
  if (NETWORK_CODES.has(code) || NETWORK_NAMES.has(name) || (status === undefined && !AUTH.has(name))) {
    // No HTTP answer at all: the connection failed, reset or timed out.
    return { type: "retry", kind: "connection", reason };
  }
  if (AUTH.has(name) || status === 401 || status === 403 || name === "NoSuchBucket") {
    return { type: "fatal", error: new ExportError({ kind: "auth", reason, cause: error }) };
  }
  return { type: "fatal", error: new ExportError({ kind: "invalid_data", reason, cause: error }) };
}
