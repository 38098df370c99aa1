/**
 * The provider payload types (`facade/provider-usage-types.ts`) and the typed `record()`
 * overloads, checked by the TypeScript compiler itself:
 * - `test/types/record-overloads.ts`: right shapes compile, wrong shapes are errors (each
 *   `@ts-expect-error` must meet one: an unused one is a diagnostic);
 * - every real recorded response in `test/fixtures/real` (manifest kind `response`) and every
 *   whole response in `test/fixtures/providers`, imported as JSON, passed to `record()` as
 *   `response` and its usage object as `usage`: real payloads, with all their extra fields,
 *   must compile against the types of their API.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, expectTypeOf, it } from "vitest";
import type {
  AnthropicMessage,
  AnthropicUsage,
  GeminiResponse,
  GeminiUsageMetadata,
  OpenAIChatResponse,
  OpenAIChatUsage,
  OpenAIImagesResponse,
  OpenAIImagesUsage,
  OpenAIResponsesResponse,
  OpenAIResponsesUsage,
  OpenRouterResponse,
  OpenRouterUsage,
  ProviderPayloads,
  ProviderResponse,
  ProviderUsage,
  UsageApi,
} from "../../src/index.js";

const PACKAGE = fileURLToPath(new URL("../../", import.meta.url));
const GENERATED = join(PACKAGE, "test/facade/real-payload-types.generated.ts");
const OVERLOADS = join(PACKAGE, "test/types/record-overloads.ts");

interface Fixture {
  file: string;
  kind: "response" | "sse" | "chunks";
  api: UsageApi;
}

/** `file` of test/fixtures/providers → its API, for the files that hold one whole response. */
const PROVIDER_FIXTURE_APIS: Readonly<Record<string, UsageApi>> = {
  anthropic: "anthropic",
  gemini: "gemini",
  "openai-chat": "openaiChat",
  "openai-images": "openaiImages",
  "openai-responses": "openaiResponses",
  openrouter: "openrouter",
};

/** The provider fixtures that hold one response body (not stream event lists, not pairs). */
const PROVIDER_RESPONSES = [
  "anthropic.advisor",
  "anthropic.cache-no-breakdown",
  "anthropic.cache-ttl-breakdown",
  "anthropic.compaction",
  "anthropic.fallback",
  "anthropic.message",
  "anthropic.thinking-tokens",
  "anthropic.web-fetch",
  "anthropic.web-search",
  "gemini.audio",
  "gemini.cached-audio",
  "gemini.image-output",
  "gemini.thinking-cached",
  "gemini.tool-use",
  "openai-chat.audio",
  "openai-chat.cache-write",
  "openai-chat.cached",
  "openai-chat.completion",
  "openai-chat.deepseek-cache-hit",
  "openai-chat.groq-reasoning",
  "openai-chat.groq-stream-final-chunk",
  "openai-chat.groq-x-groq-usage",
  "openai-chat.predicted-outputs",
  "openai-chat.reasoning",
  "openai-chat.stream-final-chunk",
  "openai-chat.xai-reasoning",
  "openai-images.dall-e",
  "openai-images.generation",
  "openai-responses.image-generation-tool",
  "openai-responses.response",
  "openai-responses.stream-completed",
  "openai-responses.tool-usage",
  "openai-responses.web-search",
  "openrouter.cached-reasoning",
  "openrouter.gemini-explicit-cache",
  "openrouter.image-output",
  "openrouter.stream-final-chunk",
];

/** Every real payload that is one whole response body, with its API. */
function responseFixtures(): { path: string; api: UsageApi; body: Record<string, unknown> }[] {
  const real = join(PACKAGE, "test/fixtures/real");
  const manifest: { fixtures: Fixture[] } = JSON.parse(readFileSync(join(real, "manifest.json"), "utf8"));
  const out = manifest.fixtures
    .filter((f) => f.kind === "response")
    .map((f) => ({ path: `../fixtures/real/${f.file}`, api: f.api }));
  for (const name of PROVIDER_RESPONSES) {
    const api = PROVIDER_FIXTURE_APIS[name.split(".")[0] ?? ""];
    if (api !== undefined) out.push({ path: `../fixtures/providers/${name}.json`, api });
  }
  return out.map((f) => ({
    ...f,
    body: JSON.parse(readFileSync(join(PACKAGE, "test/facade", f.path), "utf8")),
  }));
}

/** Where an API's usage object sits in its response body (`null` when it has none). */
function usageExpression(api: UsageApi, body: Record<string, unknown>, id: string): string | null {
  const present = (v: unknown) => typeof v === "object" && v !== null;
  if (api === "gemini") return present(body.usageMetadata) ? `${id}.usageMetadata` : null;
  if (api === "openaiResponses" && present(body.response)) {
    return present((body.response as Record<string, unknown>).usage) ? `${id}.response.usage` : null;
  }
  return present(body.usage) ? `${id}.usage` : null;
}

/** A TypeScript file importing every fixture as JSON and recording it, one fixture per block. */
function generatedSource(): { text: string; fixtureAtLine: Map<number, string> } {
  const lines = [
    'import type { Latch, ProviderObservationInput } from "../../src/index.js";',
    "declare const latch: Latch;",
    "declare const observation: ProviderObservationInput;",
  ];
  const fixtureAtLine = new Map<number, string>();
  const body: string[] = [];
  for (const [i, f] of responseFixtures().entries()) {
    const id = `f${i}`;
    lines.push(`import ${id} from ${JSON.stringify(f.path)} with { type: "json" };`);
    const start = body.length;
    body.push(`void latch.record({ api: "${f.api}", response: ${id}, observation });`);
    const usage = usageExpression(f.api, f.body, id);
    if (usage !== null) body.push(`void latch.record({ api: "${f.api}", usage: ${usage}, observation });`);
    for (let line = start; line < body.length; line++) fixtureAtLine.set(line, f.path);
  }
  const offset = lines.length;
  const shifted = new Map([...fixtureAtLine].map(([line, file]) => [line + offset, file]));
  return { text: [...lines, ...body, ""].join("\n"), fixtureAtLine: shifted };
}

/** Compiles `roots` (plus a virtual GENERATED file) with the package's compiler options. */
function diagnostics(roots: string[], generated?: string): readonly ts.Diagnostic[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(PACKAGE, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (config === undefined) throw new Error("tsconfig.json not readable");
  const host = ts.createCompilerHost(config.options);
  if (generated !== undefined) {
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (f) => f === GENERATED || fileExists.call(host, f);
    host.readFile = (f) => (f === GENERATED ? generated : readFile.call(host, f));
    host.getSourceFile = (f, lang, onError, create) =>
      f === GENERATED
        ? ts.createSourceFile(f, generated, lang, true)
        : getSourceFile.call(host, f, lang, onError, create);
  }
  const program = ts.createProgram({ rootNames: roots, options: config.options, host });
  return ts.getPreEmitDiagnostics(program);
}

function describeDiagnostic(d: ts.Diagnostic, fixtureAtLine?: Map<number, string>): string {
  const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  if (d.file === undefined || d.start === undefined) return text;
  const { line } = d.file.getLineAndCharacterOfPosition(d.start);
  const where = fixtureAtLine?.get(line) ?? `${d.file.fileName}:${line + 1}`;
  return `${where}: ${text}`;
}

/** One program for both files (each compile of the package takes tens of seconds on CI's two cores). */
let program: readonly ts.Diagnostic[] | undefined;
let source: ReturnType<typeof generatedSource> | undefined;
function generated(): ReturnType<typeof generatedSource> {
  source ??= generatedSource();
  return source;
}
function compiled(): readonly ts.Diagnostic[] {
  program ??= diagnostics([OVERLOADS, GENERATED], generated().text);
  return program;
}

describe("provider payload types", () => {
  it("name one usage and one response type per normalizer", () => {
    expectTypeOf<keyof ProviderPayloads>().toEqualTypeOf<UsageApi>();
    expectTypeOf<ProviderUsage<"openaiChat">>().toEqualTypeOf<OpenAIChatUsage>();
    expectTypeOf<ProviderUsage<"openaiResponses">>().toEqualTypeOf<OpenAIResponsesUsage>();
    expectTypeOf<ProviderUsage<"anthropic">>().toEqualTypeOf<AnthropicUsage>();
    expectTypeOf<ProviderUsage<"gemini">>().toEqualTypeOf<GeminiUsageMetadata>();
    expectTypeOf<ProviderUsage<"openrouter">>().toEqualTypeOf<OpenRouterUsage>();
    expectTypeOf<ProviderUsage<"openaiImages">>().toEqualTypeOf<OpenAIImagesUsage>();
    expectTypeOf<ProviderResponse<"openaiChat">>().toEqualTypeOf<OpenAIChatResponse>();
    expectTypeOf<ProviderResponse<"openaiResponses">>().toEqualTypeOf<OpenAIResponsesResponse>();
    expectTypeOf<ProviderResponse<"anthropic">>().toEqualTypeOf<AnthropicMessage>();
    expectTypeOf<ProviderResponse<"gemini">>().toEqualTypeOf<GeminiResponse>();
    expectTypeOf<ProviderResponse<"openrouter">>().toEqualTypeOf<OpenRouterResponse>();
    expectTypeOf<ProviderResponse<"openaiImages">>().toEqualTypeOf<OpenAIImagesResponse>();
  });

  it("record(): right shapes compile, wrong shapes are compile errors (tsc on test/types/record-overloads.ts)", () => {
    const found = compiled().filter((d) => d.file?.fileName === OVERLOADS);
    expect(found.map((d) => describeDiagnostic(d))).toEqual([]);
  }, 180_000);

  it("every real recorded response, and its usage, compiles as its API's payload", () => {
    const { fixtureAtLine } = generated();
    expect(fixtureAtLine.size).toBeGreaterThan(300);
    const found = compiled().filter((d) => d.file?.fileName !== OVERLOADS);
    expect(found.map((d) => describeDiagnostic(d, fixtureAtLine))).toEqual([]);
  }, 180_000);
});
