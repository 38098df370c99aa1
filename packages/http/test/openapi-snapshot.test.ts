import { readFileSync } from "node:fs";
import { ApiKeys, MemoryApiKeyStore, MemoryCreditLedger, MemoryRatedRecordStore } from "@latch/core";
import { buildOpenApiDocument, createBillingApp } from "@latch/http";
import { describe, expect, it } from "vitest";

// The fixtures are the documents the app served before its routes became sub-apps (generated
// from main's code at that time, then with the 413/414/431 size-limit problems added to every
// operation); the document generated from the sub-apps' route lists must say the same thing.
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));

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
  it("is the snapshot taken before the route lists fed it, without credits", async () => {
    const expected = fixture("openapi.json");
    expect(buildOpenApiDocument()).toEqual(expected);
    expect(await (await app(false).request("/openapi.json")).json()).toEqual(expected);
  });

  it("is the snapshot taken before the route lists fed it, with credits", async () => {
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
});
