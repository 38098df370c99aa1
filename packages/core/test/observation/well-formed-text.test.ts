import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EventIdSchema,
  isWellFormedText,
  parseWith,
  QuotaNameSchema,
  SummaryQuerySchema,
} from "../../src/adapter.js";
import { parseObservation } from "../../src/index.js";
import { observation, thrown } from "../support.js";

describe("well-formed text: the one rule for strings that reach a store", () => {
  it("accepts tabs, newlines, paired surrogates and U+FFFD; refuses U+0000 and unpaired surrogates", () => {
    for (const fine of [
      "",
      "a",
      "a\tb",
      "a\nb\r\n",
      "\\",
      "\uFFFD",
      "\uD83D\uDE00",
      "x\uDBFF\uDFFFy",
      "\u0001",
    ]) {
      expect(isWellFormedText(fine), JSON.stringify(fine)).toBe(true);
    }
    for (const bad of [
      "\u0000",
      "a\u0000",
      "\uD800",
      "a\uD800b",
      "\uDC00",
      "\uDC00\uD800",
      "\uD83D\uD83D\uDE00",
      "\uDE00x",
    ]) {
      expect(isWellFormedText(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it("is exactly: survives a UTF-8 round trip unchanged (what drivers do) and holds no U+0000", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 12 }), (text) => {
        const survives = Buffer.from(text, "utf8").toString("utf8") === text;
        expect(isWellFormedText(text)).toBe(survives && !text.includes("\u0000"));
      }),
      { numRuns: 2_000 },
    );
  });

  it("is applied by the shared schemas, naming the field and never echoing the value", () => {
    const error = thrown(() => parseWith(QuotaNameSchema, "hold-\uD800", "QuotaReservator.commit", "holdId"));
    expect(error).toMatchObject({
      code: "invalid_input",
      issues: [{ path: "holdId", message: "must not contain U+0000 or an unpaired surrogate" }],
    });
    expect(
      thrown(() => parseWith(EventIdSchema, "e\u0000:0:openai", "ObservationStore.get", "eventId")),
    ).toMatchObject({
      issues: [{ path: "eventId" }],
    });
    const query = {
      start: "2026-03-01T00:00:00Z",
      end: "2026-04-01T00:00:00Z",
      groupBy: [],
      filters: { feature: "\uDC00" },
    };
    expect(thrown(() => parseWith(SummaryQuerySchema, query, "SummaryQuery"))).toMatchObject({
      issues: [{ path: "filters.feature" }],
    });
    const withKey = thrown(() =>
      parseObservation({ ...observation({ input_tokens: 1 }), attributes: { "k\u0000": "v" } }),
    );
    expect(withKey).toMatchObject({ issues: [{ path: "attributes" }] });
    expect((withKey as Error).message).not.toContain("k\u0000");
    expect(
      thrown(() =>
        parseObservation({
          ...observation({ input_tokens: 1 }),
          subject: { tenantId: "t", endUserId: "u\uD800" },
        }),
      ),
    ).toMatchObject({ issues: [{ path: "subject.endUserId" }] });
  });
});
