import { readFileSync } from "node:fs";
import { ApiKeys, MemoryApiKeyStore, MemoryCreditLedger, MemoryRatedRecordStore } from "@latch/core";
import { buildOpenApiDocument, createBillingApp } from "@latch/http";
import { describe, expect, it } from "vitest";

// The fixtures are the documents the app serves, reviewed when they change: first taken before
// the routes became sub-apps (the route lists had to say the same thing), then regenerated on
// purpose for issue 18 (the 413/414/431 size-limit problems, query integers typed as integers, group_by an array, every problem
// status as a shared response, Problem open to extensions, typed export media types). A change
// here is a change of the public contract: regenerate them only with a changeset that says so.
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));

interface Operation {
  parameters?: Array<{ name: string; schema: unknown; style?: string; explode?: boolean }>;
  responses?: Record<string, { content?: Record<string, unknown> }>;
}
interface Document {
  paths: Record<string, Partial<Record<"get" | "post" | "delete", Operation>>>;
  components: { schemas: Record<string, unknown> };
}

function app(withCredits: boolean) {
  const keys = new ApiKeys({
    store: new MemoryApiKeyStore(),
    secret: "openapi-snapshot-secret-0123456789abcdef",
  });
  return createBillingApp({
    keys,
    records: new MemoryRatedRecordStore(),
    ...(withCredits ? { credits: new MemoryCreditLedger() } : {}),
  });
}

describe("the OpenAPI document", () => {
  it("is the reviewed snapshot, without credits", async () => {
    const expected = fixture("openapi.json");
    expect(buildOpenApiDocument()).toEqual(expected);
    expect(await (await app(false).request("/openapi.json")).json()).toEqual(expected);
  });

  it("is the reviewed snapshot, with credits", async () => {
    const expected = fixture("openapi-credits.json");
    expect(buildOpenApiDocument({ credits: true })).toEqual(expected);
    expect(await (await app(true).request("/openapi.json")).json()).toEqual(expected);
  });

  it("lists the paths and operations in the snapshot's order", () => {
    const order = (document: unknown) =>
      Object.entries((document as { paths: Record<string, object> }).paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method} ${path}`),
      );
    expect(order(buildOpenApiDocument({ credits: true }))).toEqual(order(fixture("openapi-credits.json")));
  });

  it("types page sizes and limits as integers and group_by as a comma-separated (form, not exploded) array", () => {
    const document = buildOpenApiDocument({ credits: true }) as unknown as Document;
    const parameter = (path: string, name: string) =>
      document.paths[path]?.get?.parameters?.find((p) => p.name === name);
    for (const [path, name] of [
      ["/api/billing/keys", "limit"],
      ["/billing/lines", "page_size"],
      ["/api/billing/credits/ledgers", "page_size"],
      ["/api/billing/credits/ledgers/{ledgerId}/history", "page_size"],
    ] as const) {
      expect(parameter(path, name)?.schema, `${path} ${name}`).toEqual({
        type: "integer",
        minimum: 1,
        maximum: 1000,
      });
    }
    expect(parameter("/billing/summary", "group_by")).toMatchObject({
      style: "form",
      explode: false,
      schema: { type: "array", uniqueItems: true, items: { type: "string", enum: expect.any(Array) } },
    });
  });

  it("documents every problem status on every operation, and Problem open to extension members", () => {
    const document = buildOpenApiDocument({ credits: true }) as unknown as Document;
    for (const [path, operations] of Object.entries(document.paths)) {
      if (path === "/openapi.json") continue;
      for (const [method, operation] of Object.entries(operations)) {
        expect(Object.keys(operation.responses ?? {}), `${method} ${path}`).toEqual(
          expect.arrayContaining(["400", "401", "403", "404", "413", "414", "429", "431", "500", "503"]),
        );
      }
    }
    expect(document.paths["/api/billing/credits/ledgers"]?.post?.responses?.["409"]).toBeDefined();
    expect(document.components.schemas.Problem).toMatchObject({
      additionalProperties: true,
      required: ["type", "title", "status", "detail"],
      properties: { request_id: { type: "string" }, status: { type: "integer" } },
    });
  });

  it("types the export's media types: CSV and NDJSON text, each NDJSON line a Line", () => {
    const document = buildOpenApiDocument() as unknown as Document;
    const content = document.paths["/billing/export"]?.get?.responses?.["200"]?.content;
    expect(content).toEqual({
      "text/csv": { schema: expect.objectContaining({ type: "string", contentMediaType: "text/csv" }) },
      "application/x-ndjson": {
        schema: expect.objectContaining({ type: "string", contentMediaType: "application/x-ndjson" }),
        "x-item-schema": { $ref: "#/components/schemas/Line" },
      },
    });
  });
});
