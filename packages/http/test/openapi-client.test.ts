import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ApiKeys, MemoryApiKeyStore, MemoryCreditLedger, MemoryRatedRecordStore } from "@latch/core";
import { createBillingApp } from "@latch/http";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import createClient from "openapi-fetch";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

// What a client developer does with /openapi.json: generate types with openapi-typescript and
// call the API through openapi-fetch. The program below uses five routes; it must type-check
// with no diagnostic, and its `@ts-expect-error` lines (a page size as text, group_by as one
// comma string, a missing body field) must be errors: an unused one is a diagnostic too.
const SCOPES = ["keys:read", "keys:write", "usage:read", "billing:read", "credits:read", "credits:write"];
const tenantId = uniqueId("client-tenant");
const keys = new ApiKeys({
  store: new MemoryApiKeyStore(),
  secret: "openapi-client-secret-openapi-client-secret",
});
const records = new MemoryRatedRecordStore();
const credits = new MemoryCreditLedger();
const app = createBillingApp({ keys, records, credits });
let key = "";

beforeAll(async () => {
  key = (await keys.create({ owner: { tenantId }, name: "client", scopes: SCOPES })).plaintext;
  await records.putMany(
    ["openai", "anthropic"].map((providerId, i) =>
      makeRatedRecord({
        observation: {
          eventId: `client-${i}:0:${providerId}`,
          subject: { tenantId },
          provider: { providerId },
          timing: { startedAt: "2026-03-02T00:00:00Z", completedAt: "2026-03-02T00:00:01Z" },
        },
      }),
    ),
  );
  await credits.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens"] },
  });
});

const PROGRAM = `
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Problem = components["schemas"]["Problem"];

export async function main(baseUrl: string, key: string): Promise<string[]> {
  const client = createClient<paths>({
    baseUrl,
    headers: { authorization: \`Bearer \${key}\` },
    querySerializer: { array: { style: "form", explode: false } },
  });
  const seen: string[] = [];
  const window = { from: "2026-03-01T00:00:00Z", to: "2026-03-04T00:00:00Z" };

  // 1. Lines: page_size is a number, the page's items are typed.
  const lines = await client.GET("/billing/lines", { params: { query: { ...window, page_size: 25 } } });
  if (lines.data !== undefined) {
    const size: number = lines.data.page_size;
    const cost: string | undefined = lines.data.items[0]?.cost;
    seen.push(\`lines \${size} \${cost ?? ""}\`);
  }
  // @ts-expect-error a page size is a number, not text
  await client.GET("/billing/lines", { params: { query: { ...window, page_size: "25" } } });

  // 2. Summary: group_by is an array of known dimensions.
  const summary = await client.GET("/billing/summary", {
    params: { query: { ...window, group_by: ["provider", "model"] } },
  });
  if (summary.data !== undefined) seen.push(\`summary \${summary.data.breakdown.length}\`);
  // @ts-expect-error group_by is an array, not one comma string
  await client.GET("/billing/summary", { params: { query: { ...window, group_by: "provider,model" } } });

  // 3. Keys: create one; a problem is a Problem open to extension members.
  const created = await client.POST("/api/billing/keys", { body: { name: "ci", scopes: ["billing:read"] } });
  if (created.data !== undefined) seen.push(\`key \${created.data.key.id.length > 0}\`);
  if (created.error !== undefined) {
    const problem: Problem = created.error;
    const requestId: string | undefined = problem.request_id;
    const extension: unknown = problem["trace"];
    seen.push(\`problem \${problem.status} \${requestId} \${String(extension)}\`);
  }
  // @ts-expect-error scopes are required
  await client.POST("/api/billing/keys", { body: { name: "ci" } });

  // 4. Credits: create a ledger, then read its balance by path parameter.
  const ledger = await client.POST("/api/billing/credits/ledgers", { body: { ledger_id: "client-ledger" } });
  if (ledger.data !== undefined) seen.push(\`ledger \${ledger.data.status}\`);
  const balance = await client.GET("/api/billing/credits/ledgers/{ledgerId}/balance", {
    params: { path: { ledgerId: "client-ledger" }, query: { at: "2026-03-02T00:00:00Z" } },
  });
  if (balance.data !== undefined) seen.push(\`balance \${balance.data.features.length}\`);
  const tooMany = balance.response.status === 429 ? balance.error : undefined;
  if (tooMany !== undefined) seen.push(tooMany.type);

  // 5. Export: NDJSON as text, one line per billing line.
  const exported = await client.GET("/billing/export", {
    params: { query: { ...window, format: "jsonl" } },
    parseAs: "text",
  });
  if (exported.data !== undefined) {
    const text: string = exported.data;
    seen.push(\`export \${text.split("\\\\n").filter(Boolean).length}\`);
  }
  return seen;
}
`;

interface UntypedClient {
  GET(
    path: string,
    init: { params: { query: Record<string, unknown> }; parseAs?: "text" },
  ): Promise<{ data?: unknown; response: Response }>;
}

/** The package directory: the program is type-checked as if it lived there (its node_modules). */
const HERE = fileURLToPath(new URL("..", import.meta.url));

/** Type-checks `files` (in memory, under HERE) with strict options; the diagnostics as text. */
function typeCheck(files: Record<string, string>): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    types: [],
    skipLibCheck: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
  };
  const virtual = new Map(Object.entries(files).map(([name, text]) => [`${HERE}${name}`, text]));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
  host.getSourceFile = (name, version, ...rest) => {
    const text = virtual.get(name);
    return text === undefined
      ? getSourceFile.call(host, name, version, ...rest)
      : ts.createSourceFile(name, text, version, true);
  };
  const program = ts.createProgram([`${HERE}client.ts`], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where =
      d.file === undefined
        ? ""
        : `${d.file.fileName.replace(HERE, "")}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: `;
    return `${where}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

describe("a client generated from /openapi.json (openapi-typescript + openapi-fetch)", () => {
  it("type-checks a program using five routes, with no diagnostic", async () => {
    const document = (await (await app.request("/openapi.json")).json()) as OpenAPI3;
    const schema = astToString(await openapiTS(document));
    // The generated types say what the document means, not what a query string carries.
    expect(schema).toMatch(/page_size\?: number;/);
    expect(schema).toMatch(/group_by\?: \("provider" \| "model" \| "day"/);
    expect(schema).toMatch(/"text\/csv": string;/);
    expect(schema).toMatch(/\[key: string\]: unknown;/);
    expect(existsSync(`${HERE}node_modules/openapi-fetch/package.json`)).toBe(true);
    expect(typeCheck({ "schema.d.ts": schema, "client.ts": PROGRAM })).toEqual([]);
  }, 120_000);

  it("gets 2xx answers for the program's calls, group_by comma-separated or repeated", async () => {
    const fetchApp = async (request: Request) => app.fetch(request);
    const calls = async (explode: boolean) => {
      // Untyped here (the types exist only in the generated program): the wire is what is tested.
      const client = createClient({
        baseUrl: "http://latch.test",
        headers: { authorization: `Bearer ${key}` },
        fetch: fetchApp,
        querySerializer: { array: { style: "form", explode } },
      }) as unknown as UntypedClient;
      const window = { from: "2026-03-01T00:00:00Z", to: "2026-03-04T00:00:00Z" };
      const summary = await client.GET("/billing/summary", {
        params: { query: { ...window, group_by: ["provider", "model"] } },
      });
      expect(summary.response.status).toBe(200);
      expect((summary.data as { group_by: string[] }).group_by).toEqual(["provider", "model"]);
      expect((summary.data as { breakdown: unknown[] }).breakdown).toHaveLength(2);
      const lines = await client.GET("/billing/lines", { params: { query: { ...window, page_size: 1 } } });
      expect(lines.response.status).toBe(200);
      expect((lines.data as { items: unknown[] }).items).toHaveLength(1);
      const exported = await client.GET("/billing/export", {
        params: { query: { ...window, format: "jsonl" } },
        parseAs: "text",
      });
      expect(exported.response.headers.get("content-type")).toBe("application/x-ndjson");
      expect(String(exported.data).trim().split("\n")).toHaveLength(2);
    };
    await calls(false);
    await calls(true);
  });
});
