import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  BILLING_COLUMNS,
  buildBillingRows,
  csvCellValue,
  encodeBuiltRowsUncompressed,
  gzipDeterministic,
  gzipDeterministicAsync,
  sameContent,
  toCsv,
  toJsonl,
  toJsonlGz,
} from "../../src/export/index.js";
import { entry, rec } from "./helpers.js";

const a = rec({
  requestId: "r1",
  total: "0.0105",
  observation: {
    subject: { tenantId: "acmé", feature: 'chat, "beta"' },
    attributes: { team: "a", provider_response_id: "chatcmpl-1" },
  },
});
const b = rec({
  requestId: "r1",
  version: 2,
  total: "0.0095",
  meters: { input_tokens: 1000, "custom:web_search": 3 },
});
const rows = buildBillingRows([entry(7, a), entry(9, b)], new Map());
const text = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(bytes);

const JSONL =
  '{"schema":"latch.billing-export.v1","rated_record_id":"r1:0:openai:v1","event_id":"r1:0:openai","version":1,' +
  '"supersedes":"","tenant_id":"acmé","org_id":"","project_id":"","api_key_id":"","end_user_id":"",' +
  '"feature":"chat, \\"beta\\"","provider":"openai","model":"gpt-4o","model_tier":"","vendor":"","region":"",' +
  '"input_tokens":1000,"cached_input_tokens":0,"cache_write_tokens":0,"cache_write_1h_tokens":0,"output_tokens":100,' +
  '"reasoning_tokens":0,"audio_input_tokens":0,"audio_output_tokens":0,"image_count":0,"image_input_tokens":0,"image_output_tokens":0,' +
  '"web_search_requests":0,"web_fetch_requests":0,"cached_audio_input_tokens":0,"custom_meters":"{}",' +
  '"cost":"0.0105","cost_delta":"0.0105","cost_minor_units":"1","currency":"USD","snapshot_id":"snap-1",' +
  '"source":"provider_reported","outcome":"success","started_at":"2026-03-01T12:00:01Z",' +
  '"completed_at":"2026-03-01T12:00:01Z","rated_at":"2026-03-01T12:00:05Z","seq":"7",' +
  '"attributes":"{\\"provider_response_id\\":\\"chatcmpl-1\\",\\"team\\":\\"a\\"}"}\n' +
  '{"schema":"latch.billing-export.v1","rated_record_id":"r1:0:openai:v2","event_id":"r1:0:openai","version":2,' +
  '"supersedes":"r1:0:openai:v1","tenant_id":"acme","org_id":"","project_id":"","api_key_id":"","end_user_id":"",' +
  '"feature":"","provider":"openai","model":"gpt-4o","model_tier":"","vendor":"","region":"",' +
  '"input_tokens":1000,"cached_input_tokens":0,"cache_write_tokens":0,"cache_write_1h_tokens":0,"output_tokens":0,' +
  '"reasoning_tokens":0,"audio_input_tokens":0,"audio_output_tokens":0,"image_count":0,' +
  '"image_input_tokens":0,"image_output_tokens":0,"web_search_requests":0,"web_fetch_requests":0,"cached_audio_input_tokens":0,' +
  '"custom_meters":"{\\"web_search\\":3}","cost":"0.0095","cost_delta":"-0.001","cost_minor_units":"1",' +
  '"currency":"USD","snapshot_id":"snap-1","source":"corrected:r1:0:openai","outcome":"success",' +
  '"started_at":"2026-03-01T12:00:01Z","completed_at":"2026-03-01T12:00:01Z","rated_at":"2026-03-01T12:00:05Z",' +
  '"seq":"9","attributes":"{}"}\n';

const CSV =
  "schema,rated_record_id,event_id,version,supersedes,tenant_id,org_id,project_id,api_key_id,end_user_id,feature," +
  "provider,model,model_tier,vendor,region,input_tokens,cached_input_tokens,cache_write_tokens," +
  "cache_write_1h_tokens,output_tokens,reasoning_tokens,audio_input_tokens,audio_output_tokens,image_count," +
  "image_input_tokens,image_output_tokens,web_search_requests,web_fetch_requests,cached_audio_input_tokens," +
  "custom_meters,cost,cost_delta,cost_minor_units,currency,snapshot_id,source,outcome,started_at,completed_at," +
  "rated_at,seq,attributes\r\n" +
  'latch.billing-export.v1,r1:0:openai:v1,r1:0:openai,1,,acmé,,,,,"chat, ""beta""",openai,gpt-4o,,,,' +
  "1000,0,0,0,100,0,0,0,0,0,0,0,0,0,{},0.0105,0.0105,1,USD,snap-1,provider_reported,success," +
  "2026-03-01T12:00:01Z,2026-03-01T12:00:01Z,2026-03-01T12:00:05Z,7," +
  '"{""provider_response_id"":""chatcmpl-1"",""team"":""a""}"\r\n' +
  "latch.billing-export.v1,r1:0:openai:v2,r1:0:openai,2,r1:0:openai:v1,acme,,,,,,openai,gpt-4o,,,," +
  '1000,0,0,0,0,0,0,0,0,0,0,0,0,0,"{""web_search"":3}",0.0095,-0.001,1,USD,snap-1,corrected:r1:0:openai,success,' +
  "2026-03-01T12:00:01Z,2026-03-01T12:00:01Z,2026-03-01T12:00:05Z,9,{}\r\n";

describe("JSONL", () => {
  it("writes one object per line, keys in column order, integers as numbers, amounts as strings", () => {
    const bytes = toJsonl(rows);
    expect(text(bytes)).toBe(JSONL);
    // UTF-8: "é" is two bytes.
    expect(bytes.byteLength).toBe(JSONL.length + 1);
    const parsed = JSONL.trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of parsed) expect(Object.keys(r)).toEqual([...BILLING_COLUMNS]);
    expect(parsed.map((r) => [r.version, r.cost_delta, r.input_tokens])).toEqual([
      [1, "0.0105", 1000],
      [2, "-0.001", 1000],
    ]);
  });

  it("writes nothing for no rows", () => {
    expect(toJsonl([]).byteLength).toBe(0);
  });

  it("the export planner's fast path writes the same bytes as toJsonl, custom meters sorted by name", () => {
    const custom = rec({
      requestId: "c",
      total: "0.2",
      meters: { input_tokens: 5, "custom:web_search": 2, "custom:10": 1, "custom:9": 3 },
    });
    const built = buildBillingRows(
      [entry(1, a), entry(2, custom), entry(3, b)],
      new Map([[a.ratedRecordId, a]]),
    );
    expect(built[1]?.custom_meters).toBe('{"10":1,"9":3,"web_search":2}');
    const jsonl = encodeBuiltRowsUncompressed(built, "jsonl.gz");
    expect(jsonl.gzip).toBe(true);
    expect(Buffer.from(jsonl.bytes)).toEqual(Buffer.from(toJsonl(built)));
    expect(encodeBuiltRowsUncompressed(built, "csv")).toEqual({ bytes: toCsv(built), gzip: false });
    expect(encodeBuiltRowsUncompressed(built, "csv.gz")).toEqual({ bytes: toCsv(built), gzip: true });
  });

  it("gzips the same bytes on the thread pool as on the event loop", async () => {
    const bytes = toJsonl(rows);
    expect(Buffer.from(await gzipDeterministicAsync(bytes))).toEqual(Buffer.from(gzipDeterministic(bytes)));
  });
});

describe("JSONL gzip", () => {
  it("is deterministic and gunzips to the JSONL", () => {
    const first = toJsonlGz(rows);
    const second = toJsonlGz(buildBillingRows([entry(7, a), entry(9, b)], new Map()));
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
    expect(text(gunzipSync(first))).toBe(JSONL);
  });

  it("writes a fixed header: magic, deflate, no flags, mtime 0, OS byte 255", () => {
    const head = [...toJsonlGz(rows).subarray(0, 10)];
    expect(head).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
  });
});

describe("CSV", () => {
  it("writes RFC 4180 with a header row and CRLF", () => {
    expect(text(toCsv(rows))).toBe(CSV);
  });

  it("neutralises text cells (OWASP) and keeps the number columns, a negative cost_delta included", () => {
    const hostile = rec({
      requestId: "r2",
      total: "0.0105",
      observation: { subject: { tenantId: "=1+1", endUserId: "@me", feature: "-x" } },
    });
    const built = buildBillingRows([entry(11, hostile)], new Map());
    const [header, line] = text(toCsv(built)).split("\r\n") as [string, string];
    expect(header.split(",")).toEqual([...BILLING_COLUMNS]);
    expect(line).toContain(`,"'=1+1",,,,"'@me","'-x",`);
    expect(text(toCsv(rows))).toContain(",0.0095,-0.001,1,USD,");
    expect(built[0]?.tenant_id).toBe("=1+1"); // the row itself (and JSONL) keep the value
    expect(csvCellValue("'=1+1")).toBe("=1+1");
  });

  it("writes attributes as one JSON cell: quoted, never starting with a formula character", () => {
    const attributes = {
      formula: '=HYPERLINK("http://evil","x")',
      plus: "+cmd",
      "=key": "-1",
      note: 'a, "b"\r\nc',
      emoji: "🧾 ü",
    };
    const built = buildBillingRows(
      [entry(12, rec({ requestId: "r3", total: "0.1", observation: { attributes } }))],
      new Map(),
    );
    const json = built[0]?.attributes as string;
    expect(json).toBe(
      '{"=key":"-1","emoji":"🧾 ü","formula":"=HYPERLINK(\\"http://evil\\",\\"x\\")","note":"a, \\"b\\"\\r\\nc","plus":"+cmd"}',
    );
    // The cell starts with `{` (JSON escapes CR/LF, so the record stays on one line): a spreadsheet
    // reads it as text, and the csvCell prefix, which would corrupt the JSON, is never needed.
    const lines = text(toCsv(built)).split("\r\n");
    expect(lines).toHaveLength(3);
    expect(lines[1]?.endsWith(`,"${json.replaceAll('"', '""')}"`)).toBe(true);
    expect(csvCellValue(json)).toBe(json);
    expect(JSON.parse(json)).toEqual(attributes);
    // JSONL keeps it as a JSON string holding the same text.
    expect((JSON.parse(text(toJsonl(built)).trimEnd()) as { attributes: string }).attributes).toBe(json);
  });

  it("writes only the header for no rows", () => {
    expect(text(toCsv([]))).toBe(CSV.slice(0, CSV.indexOf("\r\n") + 2));
  });
});

describe("sameContent", () => {
  it("accepts byte-equal objects, and gzip objects equal once decompressed", () => {
    const gz = toJsonlGz(rows);
    const otherCompression = gzipSync(toJsonl(rows), { level: 1 });
    expect(Buffer.from(otherCompression).equals(Buffer.from(gz))).toBe(false);
    expect(sameContent("k/part.jsonl.gz", otherCompression, gz)).toBe(true);
    expect(sameContent("k/part.jsonl.gz", gzipSync(toJsonl(rows.slice(0, 1))), gz)).toBe(false);
    expect(sameContent("k/part.jsonl.gz", new Uint8Array([1, 2, 3]), gz)).toBe(false);
    expect(sameContent("k/part.csv", toCsv(rows), toCsv(rows))).toBe(true);
    expect(sameContent("k/part.csv", toCsv(rows.slice(1)), toCsv(rows))).toBe(false);
  });
});
