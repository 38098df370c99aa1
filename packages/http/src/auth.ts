import type { ApiKeyRecord, ApiKeys, BillingSubject } from "@latch/core";
import {
  apiKeyQuotaAccount,
  HoldTtlSchema,
  isTestModeTenant,
  parseApiKey,
  parseWith,
  TEST_MODE_TENANT_MAX,
  testModeSubject,
} from "@latch/core/adapter";
import type { Context, MiddlewareHandler, Next } from "hono";
import { z } from "zod";
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
  /** The request's id (set by `createBillingApp`; also the `X-Request-Id` response header). */
  requestId?: string;
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
 * The failed-authentication limiter of {@link apiKeyAuth}: after `limit` well-formed keys from
 * one client failed their store lookup (unknown, revoked, expired) within `windowMs`, that
 * client's further keys are refused with the same `401` and no HMAC or store lookup until the
 * window ends. A malformed key or bad checksum costs nothing and is not counted. A client's
 * lookups in flight never exceed the failures it has left (20 at once by default; more wait
 * for one to end), so concurrent made-up keys cannot outrun the count.
 */
export interface FailedAuthOptions {
  /** Failed lookups allowed per client per window. Default 20. */
  limit?: number;
  /** The window, in milliseconds. Default 60,000. */
  windowMs?: number;
  /**
   * Who the client is. Default: the TCP peer address under `@hono/node-server`
   * (`c.env.incoming.socket.remoteAddress`; an IPv6 peer by its /64 prefix, see
   * {@link peerClient}); on other runtimes, or behind a proxy, return your
   * trusted client address (e.g. from the proxy's header). `undefined` ⇒ not limited.
   */
  clientId?: (c: Context<BillingEnv>) => string | undefined;
  /** Clients tracked at once (least recently failed forgotten first). Default 10,000. */
  maxClients?: number;
  /** Epoch ms. Default `Date.now`. */
  clock?: () => number;
}

export interface ApiKeyAuthOptions {
  /** The failed-authentication limiter; `false` turns it off. Defaults in {@link FailedAuthOptions}. */
  failedAuth?: FailedAuthOptions | false;
}

/**
 * The client a peer address stands for: an IPv4 address as it is (also when IPv4-mapped,
 * `::ffff:192.0.2.1`), an IPv6 address by its /64 prefix (`2001:db8:0:1::/64`), since one host
 * usually holds a whole /64 and could otherwise rotate through 2^64 addresses, each with its
 * own failure budget.
 */
export function peerClient(address: string): string {
  const bare = address.split("%")[0] as string;
  if (!bare.includes(":")) return bare;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  if (mapped !== null) return mapped[1] as string;
  const [head = "", tail] = bare.split("::");
  const words = (part: string) => (part === "" ? [] : part.split(":"));
  const left = words(head);
  const right = tail === undefined ? [] : words(tail);
  const last = right.at(-1) ?? left.at(-1);
  if (last?.includes(".")) {
    // An embedded IPv4 tail (`64:ff9b::192.0.2.1`) fills the last two groups.
    const target = right.length > 0 ? right : left;
    target.pop();
    target.push("0", "0");
  }
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  const prefix = groups.slice(0, 4).map((g) => Number.parseInt(g || "0", 16).toString(16));
  return `${prefix.join(":")}::/64`;
}

/** The TCP peer under @hono/node-server (`c.env.incoming` is the Node request), as {@link peerClient}. */
function nodePeer(c: Context<BillingEnv>): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: unknown } } } | undefined;
  const address = env?.incoming?.socket?.remoteAddress;
  return typeof address === "string" ? peerClient(address) : undefined;
}

const FailedAuthSchema = z.object({
  limit: z.number().int().min(1).max(1_000_000).default(20),
  windowMs: z.number().int().min(1).max(86_400_000).default(60_000),
  maxClients: z.number().int().min(1).max(10_000_000).default(10_000),
});

/** Failed lookups per client in fixed windows, bounded in clients. */
class FailedAuthLimiter {
  readonly #clients = new Map<string, { since: number; failures: number }>();
  /** Lookups in flight per client, and the requests waiting for one to end. */
  readonly #slots = new Map<string, { inFlight: number; waiting: Array<() => void> }>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxClients: number;
  readonly #clock: () => number;

  constructor(limit: number, windowMs: number, maxClients: number, clock: () => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxClients = maxClients;
    this.#clock = clock;
  }

  blocked(client: string): boolean {
    const entry = this.#clients.get(client);
    if (entry === undefined) return false;
    if (this.#clock() - entry.since >= this.#windowMs) {
      this.#clients.delete(client);
      return false;
    }
    return entry.failures >= this.#limit;
  }

  /** Failures counted for `client` in its current window. */
  #failures(client: string): number {
    const entry = this.#clients.get(client);
    return entry === undefined || this.#clock() - entry.since >= this.#windowMs ? 0 : entry.failures;
  }

  /**
   * Waits for a lookup slot: a client's lookups in flight never exceed the failures it has left
   * (`limit` minus its failures), so concurrent made-up keys cannot outrun the count. `false`
   * when the client is blocked. Every `true` must be followed by {@link release}.
   */
  async acquire(client: string): Promise<boolean> {
    for (;;) {
      if (this.blocked(client)) return false;
      const slot = this.#slots.get(client) ?? { inFlight: 0, waiting: [] };
      this.#slots.set(client, slot);
      if (slot.inFlight < this.#limit - this.#failures(client)) {
        slot.inFlight += 1;
        return true;
      }
      await new Promise<void>((resolve) => slot.waiting.push(resolve));
    }
  }

  /** Ends a lookup begun by {@link acquire}; the waiting requests check again. */
  release(client: string): void {
    const slot = this.#slots.get(client);
    if (slot === undefined) return;
    slot.inFlight -= 1;
    const waiting = slot.waiting.splice(0);
    if (slot.inFlight === 0) this.#slots.delete(client);
    for (const wake of waiting) wake();
  }

  failed(client: string): void {
    const now = this.#clock();
    const entry = this.#clients.get(client);
    this.#clients.delete(client); // re-inserted last: the Map's order is least recently failed first
    const current =
      entry === undefined || now - entry.since >= this.#windowMs ? { since: now, failures: 0 } : entry;
    current.failures += 1;
    while (this.#clients.size >= this.#maxClients) {
      this.#clients.delete(this.#clients.keys().next().value as string);
    }
    this.#clients.set(client, current);
  }
}

/**
 * Bearer authentication: resolves `Authorization: Bearer <key>` through `keys.authenticate`
 * and puts the key on the context (`c.get("apiKey")`), with the subject its data lives under
 * (`c.get("subject")`: a test-mode key's is isolated from live data unless
 * `testModeData: "shared"`). A missing, malformed, unknown, revoked or expired key is a 401
 * problem; a key with a bad checksum is refused before any store lookup, a digest recently
 * not found is answered from `ApiKeys`' negative cache, and a client whose keys keep failing
 * is refused without lookups for a while ({@link FailedAuthOptions}). Every refusal is the
 * same `401`.
 *
 * @example
 * app.use("/v1/*", apiKeyAuth(keys));
 * app.use("/v1/*", apiKeyAuth(keys, { failedAuth: { clientId: (c) => c.req.header("x-real-ip") } }));
 */
export function apiKeyAuth(keys: ApiKeys, options: ApiKeyAuthOptions = {}): MiddlewareHandler<BillingEnv> {
  const testModeData = options.testModeData ?? "isolated";
  const failedAuth = options.failedAuth;
  let limiter: FailedAuthLimiter | undefined;
  let clientId: (c: Context<BillingEnv>) => string | undefined = nodePeer;
  if (failedAuth !== false) {
    const settings = parseWith(
      FailedAuthSchema,
      { limit: failedAuth?.limit, windowMs: failedAuth?.windowMs, maxClients: failedAuth?.maxClients },
      "apiKeyAuth options",
      "failedAuth",
    );
    limiter = new FailedAuthLimiter(
      settings.limit,
      settings.windowMs,
      settings.maxClients,
      failedAuth?.clock ?? Date.now,
    );
    clientId = failedAuth?.clientId ?? nodePeer;
  }
  return async (c, next) => {
    const header = c.req.header("authorization");
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) throw unauthorized(header !== undefined);
    // A malformed key or a bad checksum costs no lookup: refused before the limiter.
    if (parseApiKey(token) === undefined) throw unauthorized(true);
    const client = limiter === undefined ? undefined : clientId(c);
    if (client !== undefined && !(await limiter?.acquire(client))) {
      // Over the limit: no lookups for this client's keys, except keys that authenticated here
      // recently (a made-up key never did), so a client sharing an address with an attacker (a
      // proxy, a NAT) keeps working with the keys it uses.
      const known = await keys.authenticate(token, c.req.raw.signal, { knownOnly: true });
      if (!known.ok) throw unauthorized(true);
      return admit(c, known.key, next);
    }
    let result: Awaited<ReturnType<ApiKeys["authenticate"]>>;
    try {
      result = await keys.authenticate(token, c.req.raw.signal);
      // Counted before the slot is released, so a waiting request sees it.
      if (!result.ok && client !== undefined) limiter?.failed(client);
    } finally {
      if (client !== undefined) limiter?.release(client);
    }
    if (!result.ok) throw unauthorized(true);
    return admit(c, result.key, next);
  };

  async function admit(c: Context<BillingEnv>, key: ApiKeyRecord, next: Next): Promise<void> {
    const subject = keySubject(key, testModeData);
    if (subject === undefined) throw unauthorized(true);
    c.set("apiKey", key);
    c.set("subject", subject);
    await next();
  }
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
