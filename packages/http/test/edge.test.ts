import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { ApiKeys, MemoryApiKeyStore, MemoryRatedRecordStore, type RatedUsageRecord } from "@latch/core";
import { type ApiKeyStore, parseApiKey, type RatedRecordStore } from "@latch/core/adapter";
import { csvCellValue } from "@latch/core/export";
import { type BillingErrorInfo, CSV_ERROR_MARK, createBillingApp } from "@latch/http";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import { parse as parseCsv } from "csv-parse/sync";
import { afterEach, describe, expect, it, vi } from "vitest";
import { listen } from "./support.js";

// The edge of the billing app, in process (app.request) on the memory stores: request ids,
// 5xx reporting, size limits, the failed-authentication limiter, exports that stop when their
// key does, and CSV cells neutralised against formula injection.

const SECRET = "edge-test-secret-edge-test-secret-0123456789";
const FROM = "2026-03-01T00:00:00Z";
const TO = "2026-03-02T00:00:00Z";
const window = `from=${FROM}&to=${TO}`;
const ALL = ["keys:read", "keys:write", "usage:read", "billing:read"];

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A made-up key with a valid checksum (CRC-32 in 6 base62 characters, as issued keys carry), never issued. */
function madeUpKey(): string {
  let head = "latch_live_";
  for (const byte of randomBytes(32)) head += BASE62[byte % 62];
  let n = crc32(head);
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = BASE62[n % 62] + sum;
    n = Math.floor(n / 62);
  }
  const key = head + sum;
  if (parseApiKey(key) === undefined) throw new Error("the made-up key should pass the checksum");
  return key;
}

/** The real memory key store, with its digest lookups counted. */
function countingStore(): { store: ApiKeyStore; lookups: () => number } {
  const inner = new MemoryApiKeyStore();
  let lookups = 0;
  return {
    lookups: () => lookups,
    store: {
      insert: (...a) => inner.insert(...a),
      findByDigest: (...a) => {
        lookups += 1;
        return inner.findByDigest(...a);
      },
      get: (...a) => inner.get(...a),
      list: (...a) => inner.list(...a),
      revoke: (...a) => inner.revoke(...a),
      touch: (...a) => inner.touch(...a),
    },
  };
}

function recordsOf(tenantId: string, count: number, extra: Partial<RatedUsageRecord["observation"]> = {}) {
  return Array.from({ length: count }, (_, i) =>
    makeRatedRecord({
      observation: {
        eventId: `${tenantId}-${String(i).padStart(4, "0")}:0:openai`,
        subject: { tenantId },
        timing: {
          startedAt: "2026-03-01T10:00:00Z",
          completedAt: `2026-03-01T10:${String(Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}Z`,
        },
        ...extra,
      },
    }),
  );
}

async function setup(options: Partial<Parameters<typeof createBillingApp>[0]> = {}, rows = 0) {
  const counted = countingStore();
  let now = Date.parse("2026-03-10T00:00:00Z");
  const keys = new ApiKeys({ store: counted.store, secret: SECRET, clock: () => now });
  const records = new MemoryRatedRecordStore();
  const tenant = uniqueId("edge");
  if (rows > 0) await records.putMany(recordsOf(tenant, rows));
  const admin = await keys.create({ owner: { tenantId: tenant }, name: "admin", scopes: ALL });
  const app = createBillingApp({ keys, records, onError: () => undefined, ...options });
  const call = (path: string, init: RequestInit & { key?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (init.key !== undefined) headers.set("authorization", `Bearer ${init.key}`);
    return app.request(path, { ...init, headers });
  };
  return {
    app,
    keys,
    records,
    tenant,
    admin,
    call,
    lookups: counted.lookups,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("request ids", () => {
  it("puts an id on every response and in every problem, keeping a safe incoming X-Request-Id", async () => {
    const { call, admin } = await setup();
    const ok = await call(`/billing/summary?${window}`, { key: admin.plaintext });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

    const problem = await call("/billing/summary", {
      key: admin.plaintext,
      headers: { "x-request-id": "trace-1:a.b_c" },
    });
    expect(problem.status).toBe(400);
    expect(problem.headers.get("x-request-id")).toBe("trace-1:a.b_c");
    expect(((await problem.json()) as { request_id: string }).request_id).toBe("trace-1:a.b_c");

    for (const unsafe of ["a b", "x".repeat(129), 'q"uote', "line\u0085", "ü"]) {
      const r = await call("/nope", { headers: { "x-request-id": unsafe } });
      expect(r.status).toBe(404);
      const id = r.headers.get("x-request-id");
      expect(id, unsafe).toMatch(/^[0-9a-f-]{36}$/);
      expect(((await r.json()) as { request_id: string }).request_id).toBe(id);
    }
    const unauthorized = await call(`/billing/summary?${window}`);
    expect(unauthorized.status).toBe(401);
    expect(((await unauthorized.json()) as { request_id: string }).request_id).toBe(
      unauthorized.headers.get("x-request-id"),
    );
  });
});

describe("5xx reporting", () => {
  const failing = (): RatedRecordStore => {
    const store = new MemoryRatedRecordStore();
    const error = Object.assign(new Error("connect ECONNREFUSED postgres://app:hunter2@db/prod"), {
      code: "ECONNREFUSED",
    });
    return Object.assign(Object.create(store) as RatedRecordStore, {
      summary: () => Promise.reject(error),
    });
  };

  it("calls onError with the error, request id, method, path and status for every 5xx", async () => {
    const seen: Array<{ error: unknown; info: BillingErrorInfo }> = [];
    const { call, admin } = await setup({
      records: failing(),
      onError: (error, info) => seen.push({ error, info }),
    });
    const r = await call(`/billing/summary?${window}`, {
      key: admin.plaintext,
      headers: { "x-request-id": "req-42" },
    });
    expect(r.status).toBe(500);
    const body = await r.text();
    expect(body).not.toContain("hunter2");
    expect(JSON.parse(body)).toMatchObject({ type: "urn:latch:problem:internal", request_id: "req-42" });
    expect(seen).toHaveLength(1);
    expect((seen[0]?.error as { code: string }).code).toBe("ECONNREFUSED");
    expect(seen[0]?.info).toEqual({
      requestId: "req-42",
      method: "GET",
      path: "/billing/summary",
      status: 500,
    });
    // 4xx answers are not reported
    await call("/billing/summary", { key: admin.plaintext });
    await call("/billing/summary");
    expect(seen).toHaveLength(1);
  });

  it("logs one line of JSON on console.error by default, with no secret, message or query", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    const counted = countingStore();
    const keys = new ApiKeys({ store: counted.store, secret: SECRET });
    const admin = await keys.create({ owner: { tenantId: "t" }, name: "a", scopes: ALL });
    const app = createBillingApp({ keys, records: failing() }); // the default hook
    const r = await app.request(`/billing/summary?${window}&model=secret-model`, {
      headers: { authorization: `Bearer ${admin.plaintext}`, "x-request-id": "req-7" },
    });
    expect(r.status).toBe(500);
    expect(lines).toHaveLength(1);
    const line = lines[0] as string;
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      level: "error",
      msg: "request failed",
      request_id: "req-7",
      method: "GET",
      path: "/billing/summary",
      status: 500,
      error: { name: "Error", code: "ECONNREFUSED" },
    });
    for (const secret of ["hunter2", admin.plaintext, "secret-model", "postgres://"]) {
      expect(line).not.toContain(secret);
    }
  });
});

describe("request size limits", () => {
  it("answers 431 for header fields over the limit, 414 for a long path or query, as problems with an id", async () => {
    const { call, admin } = await setup({ limits: { headers: 2_048, path: 256, query: 512 } });
    const big = await call(`/billing/summary?${window}`, {
      key: admin.plaintext,
      headers: { "x-pad": "a".repeat(2_100) },
    });
    expect(big.status).toBe(431);
    expect(big.headers.get("content-type")).toBe("application/problem+json");
    expect(await big.json()).toMatchObject({
      type: "urn:latch:problem:headers_too_large",
      title: "Request Header Fields Too Large",
      status: 431,
      request_id: big.headers.get("x-request-id"),
    });
    const longPath = await call(`/billing/${"p".repeat(300)}`, { key: admin.plaintext });
    expect(longPath.status).toBe(414);
    expect(await longPath.json()).toMatchObject({
      type: "urn:latch:problem:uri_too_long",
      title: "URI Too Long",
    });
    const longQuery = await call(`/billing/summary?${window}&model=${"m".repeat(600)}`, {
      key: admin.plaintext,
    });
    expect(longQuery.status).toBe(414);
    // under the limits: served
    expect((await call(`/billing/summary?${window}`, { key: admin.plaintext })).status).toBe(200);
  });

  it("answers 413 from Content-Length before reading, and after counting a chunked body past the limit", async () => {
    const { call, admin } = await setup({ limits: { body: 1_024 } });
    const declared = await call("/api/billing/keys", {
      key: admin.plaintext,
      method: "POST",
      headers: { "content-type": "application/json", "content-length": "2048" },
      body: "x".repeat(2_048),
    });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({
      type: "urn:latch:problem:content_too_large",
      title: "Content Too Large",
      status: 413,
    });
    let pulled = 0;
    const chunked = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        if (pulled > 1_000) controller.close();
        else controller.enqueue(new Uint8Array(100).fill(0x20));
      },
    });
    const streamed = await call("/api/billing/keys", {
      key: admin.plaintext,
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: chunked,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(pulled).toBeLessThan(100); // stopped right after the limit, not at the end of the body
    // a body under the limit is served
    const small = await call("/api/billing/keys", {
      key: admin.plaintext,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "ci", scopes: ["billing:read"] }),
    });
    expect(small.status).toBe(201);
  });

  it("refuses bad limits at start-up, naming the setting", async () => {
    const { keys, records } = await setup();
    expect(() => createBillingApp({ keys, records, limits: { body: 0 } })).toThrow(
      expect.objectContaining({
        code: "invalid_input",
        issues: [expect.objectContaining({ path: "limits.body" })],
      }),
    );
  });
});

describe("failed authentication", () => {
  it("bounds the store lookups of 10,000 made-up keys with valid checksums, with identical 401s", async () => {
    const { call, admin, lookups } = await setup({
      failedAuth: { limit: 20, windowMs: 60_000, clientId: (c) => c.req.header("x-client") },
    });
    const before = lookups();
    const bodies = new Set<string>();
    const headers = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const r = await call(`/billing/summary?${window}`, {
        key: madeUpKey(),
        headers: { "x-client": "attacker", "x-request-id": "same" },
      });
      expect(r.status).toBe(401);
      bodies.add(await r.text());
      headers.add(r.headers.get("www-authenticate") ?? "");
    }
    expect(lookups() - before).toBe(20);
    expect(bodies.size).toBe(1);
    expect(headers).toEqual(new Set(['Bearer realm="latch", error="invalid_token"']));
    // another client is not affected
    const other = await call(`/billing/summary?${window}`, {
      key: admin.plaintext,
      headers: { "x-client": "alice" },
    });
    expect(other.status).toBe(200);
  });

  it("lets the client in again after the window, and counts no malformed key", async () => {
    let now = 0;
    const { call, admin, lookups } = await setup({
      failedAuth: { limit: 3, windowMs: 1_000, clientId: () => "one", clock: () => now },
    });
    for (let i = 0; i < 10; i++) await call(`/billing/summary?${window}`, { key: "latch_live_nope" });
    expect(lookups()).toBe(0);
    for (let i = 0; i < 10; i++) await call(`/billing/summary?${window}`, { key: madeUpKey() });
    expect(lookups()).toBe(3);
    expect((await call(`/billing/summary?${window}`, { key: admin.plaintext })).status).toBe(401);
    now += 1_000;
    expect((await call(`/billing/summary?${window}`, { key: admin.plaintext })).status).toBe(200);
  });

  it("limits by the TCP peer under @hono/node-server by default", async () => {
    const { app, admin, keys, tenant, lookups } = await setup();
    const unused = await keys.create({ owner: { tenantId: tenant }, name: "unused", scopes: ALL });
    const server = await listen(app);
    const get = async (key: string) => {
      const r = await fetch(`${server.url}/billing/summary?${window}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      await r.arrayBuffer();
      return r.status;
    };
    try {
      expect(await get(admin.plaintext)).toBe(200); // the admin key is in use from this peer
      for (let i = 0; i < 40; i++) expect(await get(madeUpKey())).toBe(401);
      expect(lookups()).toBe(21); // the admin's, then the default limit of 20 failures per minute
      // Over the limit, a key that authenticated recently is still looked up (a client behind
      // the same proxy or NAT as the attacker keeps working); a made-up key never was, and a key
      // never used here is refused without a lookup until the window ends.
      expect(await get(admin.plaintext)).toBe(200);
      expect(await get(unused.plaintext)).toBe(401);
      for (let i = 0; i < 10; i++) expect(await get(madeUpKey())).toBe(401);
      expect(lookups()).toBe(22);
      // A known key is still read from the store: revoked, it is refused.
      await keys.revoke({ tenantId: tenant }, admin.key.id);
      expect(await get(admin.plaintext)).toBe(401);
    } finally {
      await server.close();
    }
  });
});

/** Reads a streamed body chunk by chunk; `after(n)` runs once n bytes have arrived. */
async function readAll(
  response: Response,
  afterFirst: () => Promise<void>,
): Promise<{ before: string; after: string }> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const first = await reader.read();
  const before = decoder.decode(first.value, { stream: true });
  await afterFirst();
  let after = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    after += decoder.decode(value, { stream: true });
  }
  return { before, after };
}

describe("a long export whose key stops being valid", () => {
  const TOTAL = 300;
  const PAGE = 25;

  it("JSONL: stops within two pages of the revocation and ends with an error line", async () => {
    const { call, keys, tenant } = await setup({ exportPageSize: PAGE }, TOTAL);
    const reader = await keys.create({
      owner: { tenantId: tenant },
      name: "reader",
      scopes: ["billing:read"],
    });
    const r = await call(`/billing/export?${window}&format=jsonl`, {
      key: reader.plaintext,
      headers: { "x-request-id": "export-1" },
    });
    expect(r.status).toBe(200);
    const { before, after } = await readAll(r, async () => {
      await keys.revoke({ tenantId: tenant }, reader.key.id);
    });
    const rowsBefore = before.split("\n").filter(Boolean).length;
    const lines = after.split("\n").filter(Boolean);
    const last = JSON.parse(lines.at(-1) as string) as { error: Record<string, unknown> };
    expect(last).toEqual({
      error: {
        type: "urn:latch:problem:unauthorized",
        title: "Unauthorized",
        status: 401,
        detail: "The API key was revoked or expired during the export",
        request_id: "export-1",
      },
    });
    const rowsAfter = lines.length - 1;
    expect(rowsBefore).toBe(PAGE);
    expect(rowsAfter).toBeLessThanOrEqual(2 * PAGE);
    expect(rowsBefore + rowsAfter).toBeLessThan(TOTAL);
  });

  it("CSV: an expired key ends the export with a #error row of the header's width", async () => {
    const { call, keys, tenant, advance } = await setup({ exportPageSize: PAGE }, TOTAL);
    const reader = await keys.create({
      owner: { tenantId: tenant },
      name: "short",
      scopes: ["billing:read"],
      expiresAt: "2026-03-10T01:00:00Z",
    });
    const r = await call(`/billing/export?${window}`, { key: reader.plaintext });
    const { before, after } = await readAll(r, async () => advance(3_600_000));
    const rows = parseCsv(before + after) as string[][];
    const header = rows[0] as string[];
    const last = rows.at(-1) as string[];
    expect(last).toHaveLength(header.length);
    expect(last.slice(0, 5)).toEqual([
      CSV_ERROR_MARK,
      "urn:latch:problem:unauthorized",
      "401",
      "The API key was revoked or expired during the export",
      r.headers.get("x-request-id"),
    ]);
    const dataRows = rows.length - 2; // header and trailer
    expect(dataRows).toBeLessThanOrEqual(3 * PAGE);
    expect(dataRows).toBeLessThan(TOTAL);
  });

  it("a complete export has no error line", async () => {
    const { call, admin } = await setup({ exportPageSize: PAGE }, TOTAL);
    const jsonl = await (
      await call(`/billing/export?${window}&format=jsonl`, { key: admin.plaintext })
    ).text();
    const lines = jsonl.split("\n").filter(Boolean);
    expect(lines).toHaveLength(TOTAL);
    expect(jsonl).not.toContain('"error"');
    const csv = parseCsv(
      await (await call(`/billing/export?${window}`, { key: admin.plaintext })).text(),
    ) as string[][];
    expect(csv).toHaveLength(TOTAL + 1);
    expect(csv.some((row) => row[0] === CSV_ERROR_MARK)).toBe(false);
  });

  it("a store failure mid-stream ends with a 500 error line and is reported", async () => {
    const seen: BillingErrorInfo[] = [];
    const records = new MemoryRatedRecordStore();
    let calls = 0;
    const flaky = Object.assign(Object.create(records) as RatedRecordStore, {
      lines: (...a: Parameters<RatedRecordStore["lines"]>) => {
        calls += 1;
        return calls === 1 ? records.lines(...a) : Promise.reject(new Error("store down"));
      },
    });
    const { call, admin, tenant } = await setup({
      records: flaky,
      exportPageSize: PAGE,
      onError: (_e, info) => seen.push(info),
    });
    await records.putMany(recordsOf(tenant, TOTAL));
    const text = await (
      await call(`/billing/export?${window}&format=jsonl`, { key: admin.plaintext })
    ).text();
    const lines = text.split("\n").filter(Boolean);
    expect(lines).toHaveLength(PAGE + 1);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
      error: { type: "urn:latch:problem:internal", status: 500 },
    });
    expect(seen).toEqual([expect.objectContaining({ method: "GET", path: "/billing/export", status: 200 })]);
  });
});

describe("CSV export cells against formula injection", () => {
  it("neutralises text cells, keeps numbers, and leaves the stored values unchanged", async () => {
    const { call, admin, records, tenant } = await setup();
    const hostile = {
      tenantId: tenant,
      orgId: '=HYPERLINK("http://evil","x")',
      projectId: "+1+1",
      endUserId: "@SUM(A1)",
      feature: "-2+3",
      apiKeyId: "\tkey",
    };
    const [record] = recordsOf(tenant, 1, { subject: hostile }) as [RatedUsageRecord];
    await records.putMany([record]);

    const csv = await (await call(`/billing/export?${window}`, { key: admin.plaintext })).text();
    const [header, row] = parseCsv(csv) as [string[], string[]];
    const cell = (name: string) => row[header.indexOf(name)] as string;
    expect(cell("org_id")).toBe('\'=HYPERLINK("http://evil","x")');
    expect(cell("project_id")).toBe("'+1+1");
    expect(cell("end_user_id")).toBe("'@SUM(A1)");
    expect(cell("feature")).toBe("'-2+3");
    expect(cell("api_key_id")).toBe("'\tkey");
    expect(cell("cost")).toBe(record.total);
    expect(cell("input_tokens")).toBe(String(record.observation.meters.input_tokens ?? 0));
    for (const value of row) expect(value).not.toMatch(/^[=+\-@\t\r]/);
    for (const [field, value] of Object.entries(hostile)) {
      const column = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      expect(csvCellValue(cell(column)), field).toBe(value);
    }

    // The stored record and the JSON views are unchanged: only the CSV view is neutralised.
    const stored = await records.lines({ start: FROM, end: TO, filters: { tenantId: tenant }, limit: 10 });
    expect(stored.items[0]?.observation.subject).toEqual(hostile);
    const jsonl = await (
      await call(`/billing/export?${window}&format=jsonl`, { key: admin.plaintext })
    ).text();
    expect(JSON.parse(jsonl.trim())).toMatchObject({ org_id: hostile.orgId, feature: hostile.feature });
  });
});
