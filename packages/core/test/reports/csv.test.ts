import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchValidationError } from "../../src/errors/index.js";
import { csvCell, csvCellValue } from "../../src/export/csv-cell.js";
import { csvRow, linesToCsv, type SummaryRow, summarize, summaryToCsv } from "../../src/reports/index.js";
import type { SummaryGroupKey } from "../../src/reports/query.js";
import type { BillingSubject } from "../../src/schemas/identity.js";
import type { MeterSet } from "../../src/schemas/meters.js";
import type { UsageOutcome } from "../../src/schemas/observation.js";
import { type RatedUsageRecord, RatedUsageRecordSchema } from "../../src/schemas/rating.js";
import { observation, thrown } from "../support.js";

/**
 * A strict RFC 4180 parser for the tests: records end with CRLF (the last one too), fields
 * are separated by `,`, a quoted field may hold `,` `"` CR LF with `""` for a quote, and a
 * bare field may not contain a quote, CR or LF.
 */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`bad CSV at ${i}: ${why}`);
  };
  while (i < text.length) {
    let value = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) fail("unterminated quoted field");
        const ch = text[i];
        if (ch === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else {
          value += ch;
          i++;
        }
      }
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r") {
        const ch = text[i];
        if (ch === '"' || ch === "\n") fail("quote or LF in a bare field");
        value += ch;
        i++;
      }
    }
    row.push(value);
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (text.startsWith("\r\n", i)) {
      i += 2;
      rows.push(row);
      row = [];
      continue;
    }
    fail("expected , or CRLF after a field");
  }
  if (row.length > 0) fail("last record not terminated by CRLF");
  return rows;
}

describe("the test parser itself", () => {
  it("parses quoted and bare fields and rejects malformed input", () => {
    expect(parseCsv('a,"b,c","d""e"\r\n,\r\n""\r\n')).toEqual([["a", "b,c", 'd"e'], ["", ""], [""]]);
    expect(() => parseCsv("a,b")).toThrow(/CRLF/);
    expect(() => parseCsv("a,")).toThrow(/terminated/);
    expect(() => parseCsv('a"b\r\n')).toThrow(/bare/);
    expect(() => parseCsv("a\nb\r\n")).toThrow(/bare/);
    expect(() => parseCsv('"a\r\n')).toThrow(/unterminated/);
  });
});

describe("csvRow", () => {
  it("joins fields with commas and ends the line with CRLF, no trailing separator", () => {
    expect(csvRow(["a", "b", "c"])).toBe("a,b,c\r\n");
    expect(csvRow(["only"])).toBe("only\r\n");
    expect(csvRow(["", ""])).toBe(",\r\n");
  });

  it("quotes a field containing a comma, quote, CR or LF, doubling inner quotes", () => {
    expect(csvRow(["a,b"])).toBe('"a,b"\r\n');
    expect(csvRow(['say "hi"'])).toBe('"say ""hi"""\r\n');
    expect(csvRow(["line1\nline2", "x"])).toBe('"line1\nline2",x\r\n');
    expect(csvRow(["cr\rhere"])).toBe('"cr\rhere"\r\n');
    expect(csvRow(["crlf\r\n"])).toBe('"crlf\r\n"\r\n');
    expect(csvRow(['"'])).toBe('""""\r\n');
  });

  it("leaves other values verbatim: spaces, unicode, a quote or formula character inside a value", () => {
    expect(csvRow([" padded ", "é😀", "it's", "a=b", "1-2", "x@y"])).toBe(
      " padded ,é😀,it's,a=b,1-2,x@y\r\n",
    );
  });

  it("prefixes a text cell starting with = + - @ TAB CR or ' with ' and quotes it (OWASP CSV injection)", () => {
    expect(csvRow(["=SUM(A1:A2)", "-0.5", "+1", "@x", "\tx", "\rx", "'x"])).toBe(
      `"'=SUM(A1:A2)","'-0.5","'+1","'@x","'\tx","'\rx","''x"\r\n`,
    );
    expect(csvRow(['=HYPERLINK("http://x","y")'])).toBe(`"'=HYPERLINK(""http://x"",""y"")"\r\n`);
    expect(csvCell("=1+1")).toBe(`"'=1+1"`);
  });

  it("keeps a plain decimal in a number cell as it is, negative included, and neutralises anything else there", () => {
    expect(csvRow(["-0.5", "-12", "0", "3.25"], ["number", "number", "number", "number"])).toBe(
      "-0.5,-12,0,3.25\r\n",
    );
    expect(
      csvRow(["-1+2", "=1", "-", "1e5", "-.5"], ["number", "number", "number", "number", "number"]),
    ).toBe(`"'-1+2","'=1","'-",1e5,"'-.5"\r\n`);
    // the same value in a text cell is neutralised
    expect(csvRow(["-0.5", "-0.5"], ["text", "number"])).toBe(`"'-0.5",-0.5\r\n`);
  });

  it('writes a lone empty field as "" so it is not a blank line; rejects an empty row', () => {
    expect(csvRow([""])).toBe('""\r\n');
    expect(parseCsv(csvRow([""]))).toEqual([[""]]);
    const e = thrown(() => csvRow([]));
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues.map((i) => i.path)).toEqual(["fields"]);
  });

  it("round-trips any rows through an RFC 4180 parser", () => {
    const text = fc.string({
      unit: fc.constantFrom("a", "Z", " ", ",", '"', "\r", "\n", "é", "😀", "=", "+", "-", "@", "\t", "'"),
    });
    fc.assert(
      fc.property(fc.array(fc.array(text, { minLength: 1, maxLength: 6 }), { maxLength: 8 }), (rows) => {
        const csv = rows.map((r) => csvRow(r)).join("");
        const read = parseCsv(csv);
        // what a spreadsheet could run is never at the start of a cell…
        for (const row of read) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
        // …and csvCellValue undoes the prefix exactly
        expect(read.map((row) => row.map(csvCellValue))).toEqual(rows);
      }),
      { numRuns: 300 },
    );
  });
});

// ── report CSVs ──────────────────────────────────────────────────────────────────

interface Spec {
  eventId: string;
  completedAt: string;
  meters?: MeterSet;
  model?: string;
  provider?: string | null;
  subject?: BillingSubject;
  outcome?: UsageOutcome;
  currency?: string;
  total?: string;
  version?: number;
}

function rec(s: Spec): RatedUsageRecord {
  const version = s.version ?? 1;
  const obs = observation(s.meters ?? {}, {
    eventId: s.eventId,
    subject: s.subject ?? { tenantId: "acme" },
    model: { billableModel: s.model ?? "gpt-4o" },
    outcome: s.outcome ?? { kind: "success" },
    timing: { startedAt: s.completedAt, completedAt: s.completedAt },
  });
  if (s.provider === null) delete obs.provider;
  else obs.provider = { providerId: s.provider ?? "openai" };
  return RatedUsageRecordSchema.parse({
    ratedRecordId: `${s.eventId}:v${version}`,
    eventId: s.eventId,
    version,
    ...(version > 1 ? { supersedes: `${s.eventId}:v${version - 1}` } : {}),
    snapshotId: "snap-1",
    currency: s.currency ?? "USD",
    lineItems: [],
    total: s.total ?? "0",
    ratedAt: "2026-03-05T00:00:00Z",
    observation: obs,
  });
}

const SUMMARY_TAIL = [
  "input_tokens",
  "output_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "total_tokens",
  "requests",
  "successes",
  "failures",
  "currency",
  "cost",
];

const row = (group: SummaryRow["group"], costByCurrency: Record<string, string>): SummaryRow => ({
  group,
  inputTokens: 10,
  outputTokens: 20,
  cacheReadTokens: 3,
  cacheWriteTokens: 4,
  totalTokens: 37,
  requests: 2,
  successes: 1,
  failures: 1,
  costByCurrency,
});

describe("summaryToCsv", () => {
  it("writes a header of the groupBy keys then the value columns, one row per (group, currency)", () => {
    const csv = summaryToCsv(
      [
        row({ model: "claude", day: "2026-03-01" }, { USD: "0.0000001", EUR: "1.25" }),
        row({ model: "gpt-4o", day: "2026-03-01" }, { USD: "0.3" }),
      ],
      ["model", "day"],
    );
    expect(csv).toBe(
      [
        "model,day,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,requests,successes,failures,currency,cost",
        "claude,2026-03-01,10,20,3,4,37,2,1,1,EUR,1.25",
        "claude,2026-03-01,10,20,3,4,37,2,1,1,USD,0.0000001",
        "gpt-4o,2026-03-01,10,20,3,4,37,2,1,1,USD,0.3",
        "",
      ].join("\r\n"),
    );
  });

  it("a group with no cost gets one row with empty currency and cost", () => {
    const rows = parseCsv(summaryToCsv([row({ provider: "" }, {})], ["provider"]));
    expect(rows).toEqual([
      ["provider", ...SUMMARY_TAIL],
      ["", "10", "20", "3", "4", "37", "2", "1", "1", "", ""],
    ]);
  });

  it("names subject columns in snake_case and quotes group values that need it", () => {
    const rows = parseCsv(
      summaryToCsv(
        [row({ tenantId: "acme, inc", endUserId: 'u"1' }, { USD: "1" })],
        ["tenantId", "endUserId"],
      ),
    );
    expect(rows[0]?.slice(0, 2)).toEqual(["tenant_id", "end_user_id"]);
    expect(rows[1]?.slice(0, 2)).toEqual(["acme, inc", 'u"1']);
  });

  it("groupBy [] gives just the value columns; no rows gives just the header", () => {
    expect(summaryToCsv([], [])).toBe(`${SUMMARY_TAIL.join(",")}\r\n`);
    expect(parseCsv(summaryToCsv([row({}, { USD: "2" })], []))).toEqual([
      SUMMARY_TAIL,
      ["10", "20", "3", "4", "37", "2", "1", "1", "USD", "2"],
    ]);
  });

  it("rejects a bad groupBy, naming the entry", () => {
    const e = thrown(() => summaryToCsv([], ["model", "colour" as SummaryGroupKey]));
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues.map((i) => i.path)).toEqual(["groupBy.1"]);
    const twice = thrown(() => summaryToCsv([], ["model", "model"]));
    expect((twice as LatchValidationError).issues.map((i) => i.path)).toEqual(["groupBy"]);
  });

  it("renders summarize() output end to end", () => {
    const records = [
      rec({ eventId: "a", completedAt: "2026-03-01T01:00:00Z", meters: { input_tokens: 5 }, total: "0.1" }),
      rec({ eventId: "b", completedAt: "2026-03-01T02:00:00Z", meters: { output_tokens: 7 }, total: "0.2" }),
      rec({ eventId: "c", completedAt: "2026-03-01T03:00:00Z", currency: "EUR", total: "1.5" }),
    ];
    const rows = summarize(records, {
      start: "2026-03-01T00:00:00Z",
      end: "2026-03-02T00:00:00Z",
      groupBy: ["model"],
    });
    expect(parseCsv(summaryToCsv(rows, ["model"]))).toEqual([
      ["model", ...SUMMARY_TAIL],
      ["gpt-4o", "5", "7", "0", "0", "12", "3", "3", "0", "EUR", "1.5"],
      ["gpt-4o", "5", "7", "0", "0", "12", "3", "3", "0", "USD", "0.3"],
    ]);
  });
});

const LINES_HEADER = [
  "completed_at",
  "event_id",
  "rated_record_id",
  "version",
  "tenant_id",
  "org_id",
  "project_id",
  "api_key_id",
  "end_user_id",
  "feature",
  "provider",
  "model",
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "cache_write_1h_tokens",
  "output_tokens",
  "reasoning_tokens",
  "audio_input_tokens",
  "audio_output_tokens",
  "image_count",
  "image_input_tokens",
  "image_output_tokens",
  "web_search_requests",
  "web_fetch_requests",
  "cached_audio_input_tokens",
  "outcome",
  "currency",
  "cost",
];

describe("linesToCsv", () => {
  it("writes the header and one row per record, in the order given", () => {
    const full = rec({
      eventId: "req-1:0:anthropic",
      version: 2,
      completedAt: "2026-03-01T12:00:01.5Z",
      model: "claude",
      provider: "anthropic",
      subject: {
        tenantId: "acme",
        orgId: "org-9",
        projectId: "p1",
        apiKeyId: "key-1",
        endUserId: "user-7",
        feature: "chat, v2",
      },
      meters: {
        input_tokens: 1,
        cached_input_tokens: 2,
        cache_write_tokens: 3,
        cache_write_1h_tokens: 4,
        output_tokens: 5,
        reasoning_tokens: 6,
        audio_input_tokens: 7,
        audio_output_tokens: 8,
        image_count: 9,
        cached_audio_input_tokens: 13,
        "custom:foo": 10,
      },
      outcome: { kind: "error", code: "overloaded" },
      currency: "EUR",
      total: "1.50",
    });
    const bare = rec({
      eventId: "req-2:0:x",
      completedAt: "2026-03-01T00:00:00Z",
      provider: null,
      meters: { output_tokens: 12 },
      outcome: { kind: "timeout" },
      total: "0",
    });
    const csv = linesToCsv([full, bare]);
    expect(csv.endsWith("\r\n")).toBe(true);
    expect(parseCsv(csv)).toEqual([
      LINES_HEADER,
      [
        "2026-03-01T12:00:01.5Z",
        "req-1:0:anthropic",
        "req-1:0:anthropic:v2",
        "2",
        "acme",
        "org-9",
        "p1",
        "key-1",
        "user-7",
        "chat, v2",
        "anthropic",
        "claude",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "0",
        "0",
        "0",
        "0",
        "13",
        "error:overloaded",
        "EUR",
        "1.5",
      ],
      [
        "2026-03-01T00:00:00Z",
        "req-2:0:x",
        "req-2:0:x:v1",
        "1",
        "acme",
        "",
        "",
        "",
        "",
        "",
        "",
        "gpt-4o",
        "0",
        "0",
        "0",
        "0",
        "12",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "timeout",
        "USD",
        "0",
      ],
    ]);
    expect(csv.split("\r\n")[1]).toBe(
      '2026-03-01T12:00:01.5Z,req-1:0:anthropic,req-1:0:anthropic:v2,2,acme,org-9,p1,key-1,user-7,"chat, v2",anthropic,claude,1,2,3,4,5,6,7,8,9,0,0,0,0,13,error:overloaded,EUR,1.5',
    );
  });

  it("quotes event ids and subject fields with quotes or newlines, and no records gives just the header", () => {
    expect(linesToCsv([])).toBe(`${LINES_HEADER.join(",")}\r\n`);
    const r = rec({
      eventId: 'ev,"1"\nx',
      completedAt: "2026-03-01T00:00:00Z",
      subject: { tenantId: "t\r\n1" },
      total: "-0.25",
      outcome: { kind: "unknown" },
    });
    const csv = linesToCsv([r]);
    expect(csv).toContain('"ev,""1""\nx"');
    const parsed = parseCsv(csv);
    expect(parsed).toHaveLength(2);
    expect(parsed[1]?.[1]).toBe('ev,"1"\nx');
    expect(parsed[1]?.[4]).toBe("t\r\n1");
    expect(parsed[1]?.slice(-3)).toEqual(["unknown", "USD", "-0.25"]);
  });
});

describe("report CSVs against formula injection", () => {
  const hostile = {
    tenantId: "=cmd|' /C calc'!A0",
    orgId: "+1+1",
    projectId: "-2+3",
    apiKeyId: "@SUM(1)",
    endUserId: "\tx",
    feature: "'quoted",
  };

  it("linesToCsv neutralises every text cell and keeps version, meters and a negative cost as numbers", () => {
    const r = rec({
      eventId: "-ev1",
      completedAt: "2026-03-01T00:00:00Z",
      subject: hostile,
      model: "=model",
      provider: "@provider",
      total: "-0.5",
      meters: { input_tokens: 12 },
    });
    const csv = linesToCsv([r]);
    const cells = parseCsv(csv)[1] as string[];
    const header = parseCsv(csv)[0] as string[];
    const at = (name: string) => cells[header.indexOf(name)];
    expect(at("tenant_id")).toBe("'=cmd|' /C calc'!A0");
    expect(at("org_id")).toBe("'+1+1");
    expect(at("project_id")).toBe("'-2+3");
    expect(at("api_key_id")).toBe("'@SUM(1)");
    expect(at("end_user_id")).toBe("'\tx");
    expect(at("feature")).toBe("''quoted");
    expect(at("event_id")).toBe("'-ev1");
    expect(at("model")).toBe("'=model");
    expect(at("provider")).toBe("'@provider");
    expect(at("version")).toBe("1");
    expect(at("input_tokens")).toBe("12");
    expect(csv.endsWith(",USD,-0.5\r\n")).toBe(true);
    // the stored record is untouched, and undoing the prefix gives its values back
    expect(r.observation.subject).toEqual(hostile);
    expect(csvCellValue(at("tenant_id") as string)).toBe(hostile.tenantId);
    expect(csvCellValue(at("feature") as string)).toBe(hostile.feature);
  });

  it("summaryToCsv neutralises group values and keeps counts and a negative cost as numbers", () => {
    const csv = summaryToCsv([row({ feature: "=HYPERLINK(1)" }, { USD: "-1.25" })], ["feature"]);
    expect(parseCsv(csv)[1]).toEqual([
      "'=HYPERLINK(1)",
      "10",
      "20",
      "3",
      "4",
      "37",
      "2",
      "1",
      "1",
      "USD",
      "-1.25",
    ]);
  });
});
