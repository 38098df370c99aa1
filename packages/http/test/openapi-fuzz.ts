import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { Hono } from "hono";

/*
 * A request fuzzer driven by the served `/openapi.json`: for each operation it builds a valid
 * request from the document (parameters, body), then breaks it in one to three places with
 * hostile values (U+0000, lone surrogates, huge and negative numbers, years 0000 and 99999,
 * wrong types, missing and unknown fields, no or a bad key). Every answer is checked against
 * the document: no 5xx, a status the operation documents, a documented media type, and a body
 * that validates against its schema (ajv, JSON Schema 2020-12, as OpenAPI 3.1 uses).
 * Generation is seeded (mulberry32), so a failing seed replays the same requests.
 */

// biome-ignore lint/suspicious/noExplicitAny: any Hono env
type AnyHono = Hono<any>;
type Json = Record<string, unknown>;

/** A small seeded PRNG (mulberry32): the same seed gives the same requests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Random = () => number;
const pick = <T>(rng: Random, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

/** Text no backend may store (each must be a 400 naming the field, never a 500). */
const ILL_FORMED = ["\u0000", "a\u0000b", "\uD800", "x\uDC00", "\uDC00\uD800", "id-\uDBFF"];
/** Dates a JS `Date` or PostgreSQL gets wrong or refuses. */
const HOSTILE_DATES = [
  "0000-01-01T00:00:00Z",
  "0001-01-01T00:00:00Z",
  "0050-06-01T00:00:00Z",
  "0099-12-31T23:59:59Z",
  "1969-12-31T23:59:59Z",
  "99999-01-01T00:00:00Z",
  "+099999-01-01T00:00:00Z",
  "-000001-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999999999Z",
  "2026-02-30T00:00:00Z",
  "2026-03-01T00:00:00+01:00",
  "2026-03-01",
  "2026-03-01T24:00:00Z",
];
/** Strings that are valid JSON strings but no valid value of any field. */
const HOSTILE_STRINGS = [
  ...ILL_FORMED,
  ...HOSTILE_DATES,
  "",
  " ",
  "x".repeat(5_000),
  "-1",
  "0",
  "1.5",
  "1e309",
  "99999999999999999999",
  "9007199254740993",
  "NaN",
  "Infinity",
  "0x10",
  "\t",
  "\uFFFD",
  "\u{1F600}",
  "FUZZ<script>'\"%_\\",
  "' OR 1=1 --",
  "%00",
  "%zz",
  "a,b,,provider",
  "provider,provider",
  "Europe/Nowhere",
];
/** Values of the wrong type for a JSON field. */
const WRONG_TYPES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  -1e300,
  1e300,
  2 ** 53,
  2 ** 53 + 2,
  [],
  ["a"],
  {},
  { nested: "x" },
];

/** Where a mutation lands. */
type Target = { in: "query" | "path"; name: string } | { in: "body"; path: string[] };

/** A text field of an operation, and whether it holds a timestamp. */
export type HostileTarget = ({ in: "query" | "path"; name: string } | { in: "body"; path: string[] }) & {
  date: boolean;
};

/** Each must be a 400 naming its field, on every backend. */
export const ILL_FORMED_TEXT = ["a\u0000b", "\uD800", "x\uDC00", "\uDC00\uD800"];
/** Timestamps outside the years 1970–9999 (well-formed otherwise); each must be a 400 naming its field. */
export const OUT_OF_RANGE_DATES = [
  "0000-01-01T00:00:00Z",
  "0050-06-01T00:00:00Z",
  "0099-12-31T23:59:59Z",
  "1969-12-31T23:59:59Z",
  "99999-01-01T00:00:00Z",
];

export interface FuzzRequest {
  operation: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** What was broken, for the failure message. */
  mutations: string[];
}

export interface FuzzFailure {
  request: string;
  status: number;
  reason: string;
}

/** Values the generator uses by field name, so valid requests reach existing resources. */
export interface FuzzWorld {
  /** The caller's key (every scope). */
  key: string;
  /** Known-good values by parameter or body field name (`id`, `ledgerId`, `feature_id`, …). */
  known: Record<string, () => string>;
}

/**
 * Percent-encodes a query or path value; a lone surrogate (which `encodeURIComponent` refuses)
 * goes as its WTF-8 bytes, as a sloppy client would send it.
 */
function encode(value: string): string {
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0) as number;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += `%${(0xe0 | (code >> 12)).toString(16).toUpperCase()}%${(0x80 | ((code >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (code & 0x3f)).toString(16).toUpperCase()}`;
    } else if (char === "%" && /^%(00|zz)$/.test(value)) {
      out += "%"; // sent raw: a stray escape, or an encoded U+0000
    } else {
      out += encodeURIComponent(char);
    }
  }
  return out;
}

export class OpenApiFuzzer {
  readonly #doc: Json;
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(document: Json) {
    this.#doc = document;
    this.#ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
    addFormats.default(this.#ajv);
    // Component schemas, referenced from operations as `latch#/components/schemas/<id>`.
    this.#ajv.addSchema({ $id: "latch", components: (document.components as Json) ?? {} });
  }

  /** Every operation of the document: `[method, path, operation]`. */
  operations(): Array<[string, string, Json]> {
    const out: Array<[string, string, Json]> = [];
    for (const [path, ops] of Object.entries(this.#doc.paths as Record<string, Json>)) {
      for (const [method, op] of Object.entries(ops)) out.push([method, path, op as Json]);
    }
    return out;
  }

  #resolve(schema: Json): Json {
    const ref = schema.$ref;
    if (typeof ref !== "string") return schema;
    const id = ref.replace("#/components/schemas/", "");
    return this.#resolve(((this.#doc.components as Json).schemas as Record<string, Json>)[id] as Json);
  }

  /** A valid value of `schema` (a field named `name`). */
  #sample(schema: Json, name: string, world: FuzzWorld, rng: Random, depth = 0): unknown {
    const s = this.#resolve(schema);
    // Known values are text: `limit` names a query integer and a money quota's decimal string.
    const known = world.known[name];
    if (known !== undefined && (s.type === "string" || s.type === undefined) && s.enum === undefined) {
      return known();
    }
    const variants = (s.oneOf ?? s.anyOf) as Json[] | undefined;
    if (variants !== undefined) return this.#sample(pick(rng, variants), name, world, rng, depth);
    if (s.const !== undefined) return s.const;
    if (Array.isArray(s.enum)) return pick(rng, s.enum);
    switch (s.type) {
      case "object": {
        const out: Json = {};
        const required = new Set((s.required as string[] | undefined) ?? []);
        for (const [key, property] of Object.entries((s.properties as Record<string, Json>) ?? {})) {
          if (required.has(key) || (depth < 2 && rng() < 0.5)) {
            out[key] = this.#sample(property, key, world, rng, depth + 1);
          }
        }
        // A map (metadata): a few entries, so that mutations reach its values.
        const extra = s.additionalProperties;
        if (extra !== undefined && typeof extra === "object" && s.properties === undefined) {
          for (let i = Math.floor(rng() * 3); i > 0; i--) {
            out[`k${i}`] = this.#sample(extra as Json, `k${i}`, world, rng, depth + 1);
          }
        }
        return out;
      }
      case "array": {
        const items = s.items as Json;
        const n = Math.floor(rng() * 3);
        const values = Array.from({ length: n }, () => this.#sample(items, name, world, rng, depth + 1));
        return s.uniqueItems === true ? [...new Set(values)] : values;
      }
      case "integer": {
        // The bounds themselves now and then (a maximum expiration, the largest page).
        if (typeof s.maximum === "number" && rng() < 0.15) return s.maximum;
        const min = typeof s.minimum === "number" ? s.minimum : 0;
        const max = typeof s.maximum === "number" ? Math.min(s.maximum, min + 50) : min + 50;
        return min + Math.floor(rng() * (max - min + 1));
      }
      case "number":
        return Math.floor(rng() * 100);
      case "boolean":
        return rng() < 0.5;
      default:
        if (s.format === "date-time") return `2026-03-0${1 + Math.floor(rng() * 3)}T00:00:00Z`;
        return `fuzz-${Math.floor(rng() * 1e6)}`;
    }
  }

  /** Leaf paths of a JSON value (where a body mutation can land). */
  #paths(value: unknown, prefix: string[] = []): string[][] {
    if (value === null || typeof value !== "object") return [prefix];
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value);
    return [prefix, ...entries.flatMap(([k, v]) => this.#paths(v, [...prefix, k]))];
  }

  /** Every text field of an operation (parameters, body leaves, map values), dates marked. */
  fields(op: Json): HostileTarget[] {
    const out: HostileTarget[] = [];
    for (const p of (op.parameters as Json[] | undefined) ?? []) {
      const schema = this.#resolve(p.schema as Json);
      if (schema.type === "string" || schema.type === "array") {
        out.push({
          in: p.in as "query" | "path",
          name: p.name as string,
          date: schema.format === "date-time",
        });
      }
    }
    const body = this.#bodySchema(op);
    const walk = (schema: Json, path: string[], depth: number): void => {
      const s = this.#resolve(schema);
      for (const variant of (s.oneOf ?? s.anyOf ?? []) as Json[]) walk(variant, path, depth);
      if (s.type === "string" && path.length > 0) {
        const name = path.join(".");
        if (!out.some((t) => t.in === "body" && t.path.join(".") === name)) {
          out.push({ in: "body", path, date: s.format === "date-time" });
        }
      }
      if (s.type === "object" && depth < 3) {
        for (const [key, property] of Object.entries((s.properties as Record<string, Json>) ?? {})) {
          walk(property, [...path, key], depth + 1);
        }
        const extra = s.additionalProperties;
        if (s.properties === undefined && extra !== undefined && typeof extra === "object") {
          walk(extra as Json, [...path, "k"], depth + 1);
        }
      }
    };
    if (body !== undefined) walk(body, [], 0);
    return out;
  }

  /**
   * A valid request of the operation with `value` at `target` (every other field valid): what a
   * test of one bad field sends.
   */
  withField(
    method: string,
    path: string,
    op: Json,
    world: FuzzWorld,
    rng: Random,
    target: HostileTarget,
    value: string,
  ): FuzzRequest {
    const query: Record<string, string> = {};
    const pathValues: Record<string, string> = {};
    for (const p of (op.parameters as Json[] | undefined) ?? []) {
      const name = p.name as string;
      if (p.in !== "path" && p.required !== true) continue;
      const sampled = this.#sample(p.schema as Json, name, world, rng);
      (p.in === "path" ? pathValues : query)[name] = Array.isArray(sampled)
        ? sampled.join(",")
        : String(sampled);
    }
    const bodySchema = this.#bodySchema(op);
    const body = (bodySchema === undefined ? undefined : this.#sample(bodySchema, "(body)", world, rng)) as
      | Json
      | undefined;
    if (target.in === "body") {
      // Absent optional objects on the way (a quota, a subject) are sampled whole: one bad field.
      let parent = body as Json;
      let schema = bodySchema as Json;
      const path = target.path;
      for (const [i, key] of path.slice(0, -1).entries()) {
        const next = path[i + 1] as string;
        const s = this.#resolve(schema);
        const variants = ((s.oneOf ?? s.anyOf) as Json[] | undefined)?.map((v) => this.#resolve(v)) ?? [s];
        const holder =
          variants.find((v) => (v.properties as Json | undefined)?.[key] !== undefined) ??
          (variants[0] as Json);
        schema = ((holder.properties as Record<string, Json> | undefined)?.[key] ??
          holder.additionalProperties) as Json;
        const child = this.#resolve(schema);
        const childVariants = ((child.oneOf ?? child.anyOf) as Json[] | undefined)?.map((v) =>
          this.#resolve(v),
        );
        const fitting = childVariants?.find((v) => (v.properties as Json | undefined)?.[next] !== undefined);
        if (parent[key] === null || typeof parent[key] !== "object" || fitting !== undefined) {
          parent[key] = this.#sample(fitting ?? schema, key, world, rng, 0);
        }
        parent = parent[key] as Json;
      }
      parent[path.at(-1) as string] = value;
    } else {
      (target.in === "path" ? pathValues : query)[target.name] = value;
    }
    return this.#build(
      method,
      path,
      query,
      pathValues,
      world,
      body === undefined ? undefined : JSON.stringify(body),
      [
        `${target.in === "body" ? `body.${target.path.join(".")}` : `${target.in} ${target.name}`} = ${JSON.stringify(value).slice(0, 40)}`,
      ],
    );
  }

  #bodySchema(op: Json): Json | undefined {
    const content = (op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
    return content?.["application/json"]?.schema as Json | undefined;
  }

  #build(
    method: string,
    path: string,
    query: Record<string, string | string[]>,
    pathValues: Record<string, string>,
    world: FuzzWorld,
    body: string | undefined,
    mutations: string[],
  ): FuzzRequest {
    const url =
      path.replace(/\{(\w+)\}/g, (_m, name: string) => encode(pathValues[name] ?? "")) +
      (Object.keys(query).length === 0
        ? ""
        : `?${Object.entries(query)
            .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encode(k)}=${encode(x)}`))
            .join("&")}`);
    return {
      operation: `${method.toUpperCase()} ${path}`,
      method: method.toUpperCase(),
      url,
      headers: {
        authorization: `Bearer ${world.key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body }),
      mutations,
    };
  }

  /** `count` requests for one operation, from `rng` (valid ones, and broken ones). */
  requests(
    method: string,
    path: string,
    op: Json,
    world: FuzzWorld,
    rng: Random,
    count: number,
  ): FuzzRequest[] {
    const params = (op.parameters as Json[] | undefined) ?? [];
    const bodySchema = (
      ((op.requestBody as Json | undefined)?.content as Json | undefined)?.["application/json"] as
        | Json
        | undefined
    )?.schema as Json | undefined;
    const out: FuzzRequest[] = [];
    for (let i = 0; i < count; i++) {
      const query: Record<string, string | string[]> = {};
      const pathValues: Record<string, string> = {};
      for (const p of params) {
        const name = p.name as string;
        if (p.in === "path") {
          pathValues[name] = String(this.#sample(p.schema as Json, name, world, rng));
        } else if (p.required === true || rng() < 0.4) {
          const value = this.#sample(p.schema as Json, name, world, rng);
          query[name] = Array.isArray(value) ? value.map(String) : String(value);
        }
      }
      let body: unknown =
        bodySchema === undefined ? undefined : this.#sample(bodySchema, "(body)", world, rng);
      let rawBody: string | undefined;
      const headers: Record<string, string> = { authorization: `Bearer ${world.key}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const mutations: string[] = [];
      const times = rng() < 0.2 ? 0 : 1 + Math.floor(rng() * 3);
      for (let m = 0; m < times; m++) {
        const targets: Target[] = [
          ...params.map((p) => ({ in: p.in as "query" | "path", name: p.name as string })),
          ...(body === undefined ? [] : this.#paths(body).map((path) => ({ in: "body" as const, path }))),
        ];
        const roll = rng();
        if (roll < 0.04) {
          mutations.push("no key");
          delete headers.authorization;
        } else if (roll < 0.08) {
          mutations.push("a made-up key");
          headers.authorization = `Bearer ${pick(rng, ["latch_live_x", "x", "latch_test_\u00e9", world.key.slice(0, -1)])}`;
        } else if (roll < 0.11 && body !== undefined) {
          rawBody = pick(rng, ["", "{", "[]", "null", "1", '"x"', "{}}", '{"a":1,"a":2}']);
          mutations.push(`body ${JSON.stringify(rawBody)}`);
        } else if (roll < 0.16) {
          // Unknown or hostile names: a problem may name a plain one, but never echoes FUZZ<….
          const name = pick(rng, [
            "unknown",
            "__proto__",
            "constructor",
            "tenant_id\u0000",
            "FUZZ<key>",
            "FUZZ<\u0000",
            `FUZZ<${"k".repeat(300)}`,
          ]);
          const objects = this.#paths(body)
            .map((path) => path.reduce<unknown>((v, k) => (v as Json)[k], body))
            .filter((v): v is Json => v !== null && typeof v === "object" && !Array.isArray(v));
          if (objects.length > 0 && rng() < 0.6) {
            // Into the body or any object of it (a metadata map, a subject, a quota).
            const holder = pick(rng, objects);
            Object.defineProperty(holder, name, {
              value: "x",
              enumerable: true,
              writable: true,
              configurable: true,
            });
            mutations.push(`body key ${JSON.stringify(name).slice(0, 40)} added`);
          } else {
            query[name] = "x";
            mutations.push(`query ${name} added`);
          }
        } else if (targets.length > 0) {
          const target = pick(rng, targets);
          const value = rng() < 0.75 ? pick(rng, HOSTILE_STRINGS) : structuredClone(pick(rng, WRONG_TYPES));
          const shown = JSON.stringify(value)?.slice(0, 40);
          if (target.in === "body") {
            if (target.path.length === 0) {
              body = value;
            } else {
              let parent = body as Json;
              for (const key of target.path.slice(0, -1)) parent = parent[key] as Json;
              const last = target.path.at(-1) as string;
              if (rng() < 0.15) delete parent[last];
              else parent[last] = value;
            }
            mutations.push(`body.${target.path.join(".")} = ${shown}`);
          } else {
            // Query and path values are text: a wrong type is its text.
            const text = typeof value === "string" ? value : JSON.stringify(value);
            if (target.in === "path") {
              // An empty or dot segment would route elsewhere; this fuzzes values, not routing.
              pathValues[target.name] = text === "" || text === " " ? "%20" : text;
            } else if (rng() < 0.15) {
              delete query[target.name];
            } else if (rng() < 0.1) {
              query[target.name] = [text, text];
            } else {
              query[target.name] = text;
            }
            mutations.push(`${target.in} ${target.name} = ${shown}`);
          }
        }
      }
      const url =
        path.replace(/\{(\w+)\}/g, (_m, name: string) =>
          pathValues[name] === "%20" ? "%20" : encode(pathValues[name] ?? ""),
        ) +
        (Object.keys(query).length === 0
          ? ""
          : `?${Object.entries(query)
              .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encode(k)}=${encode(x)}`))
              .join("&")}`);
      out.push({
        operation: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        url,
        headers,
        ...(rawBody !== undefined
          ? { body: rawBody }
          : body === undefined
            ? {}
            : { body: JSON.stringify(body) }),
        mutations,
      });
    }
    return out;
  }

  #validator(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      validate = this.#ajv.compile(JSON.parse(key.replaceAll('"#/components/', '"latch#/components/')));
      this.#validators.set(key, validate);
    }
    return validate;
  }

  /** Sends `request` to `app`; its status, and why the answer breaks the document if it does. */
  async check(
    app: AnyHono,
    method: string,
    path: string,
    request: FuzzRequest,
  ): Promise<{ status: number; failure?: FuzzFailure; body: string }> {
    const response = await app.request(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    const text = await response.text();
    const fail = (reason: string) => ({
      status: response.status,
      body: text,
      failure: {
        request: `${request.method} ${request.url.slice(0, 200)} [${request.mutations.join("; ")}]${
          request.body === undefined ? "" : ` body ${request.body.slice(0, 200)}`
        }`,
        status: response.status,
        reason: `${reason}: ${text.slice(0, 300)}`,
      },
    });
    if (response.status >= 500) return fail("a 5xx");
    const op = ((this.#doc.paths as Record<string, Json>)[path] as Json)[method] as Json;
    let documented = (op.responses as Record<string, Json>)[String(response.status)];
    const ref = documented?.$ref;
    if (typeof ref === "string") {
      documented = ((this.#doc.components as Json).responses as Record<string, Json>)[
        ref.replace("#/components/responses/", "")
      ];
    }
    if (documented === undefined) return fail(`status ${response.status} is not documented`);
    const mediaType = (response.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    const content = documented.content as Record<string, Json> | undefined;
    const media = content?.[mediaType];
    if (media === undefined) return fail(`media type ${mediaType} is not documented for ${response.status}`);
    if (mediaType === "application/json" || mediaType === "application/problem+json") {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return fail("not JSON");
      }
      if (media.schema !== undefined) {
        const validate = this.#validator(media.schema as Json);
        if (!validate(body))
          return fail(`does not match its schema (${this.#ajv.errorsText(validate.errors)})`);
      }
      if (mediaType === "application/problem+json") {
        const problem = body as { status?: unknown };
        if (problem.status !== response.status) return fail("problem status differs from the response's");
        if (text.includes("FUZZ<")) return fail("the problem echoes the input");
      }
    } else if (media["x-item-schema"] !== undefined) {
      const line = this.#validator(media["x-item-schema"] as Json);
      for (const row of text.split("\n").filter((l) => l !== "")) {
        if (!line(JSON.parse(row)))
          return fail(`an NDJSON line does not match Line (${this.#ajv.errorsText(line.errors)})`);
      }
    } else if (mediaType === "text/csv") {
      if (!text.startsWith("completed_at,")) return fail("a CSV body without its header row");
    }
    return { status: response.status, body: text };
  }
}
