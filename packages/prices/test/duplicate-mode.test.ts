import { describe, expect, it } from "vitest";
import { duplicateEntryKeys } from "../src/duplicate-keys.js";
import { convertLiteLlmCostMap } from "../src/index.js";

// Hand-written in LiteLLM's format, not LiteLLM data.
const source = { fetchedAt: "2026-12-01T00:00:00Z" };

describe("a LiteLLM entry that gives mode twice", () => {
  it("is left out and reported (duplicateMode), whichever mode comes last", () => {
    const json = `{
      "rerank-as-chat": {"mode": "rerank", "mode": "chat", "input_cost_per_token": 1e-06},
      "chat-as-rerank": {"mode": "chat", "input_cost_per_token": 2e-06, "mo\\u0064e": "rerank"},
      "fine": {"mode": "chat", "input_cost_per_token": 3e-06, "nested": {"mode": 1, "mode": 2}}
    }`;
    const { catalog, skipped } = convertLiteLlmCostMap(json, { source });
    expect(catalog.entries.map((e) => e.snapshot.model.billableModel)).toEqual(["fine"]);
    expect(skipped.filter((s) => s.code === "duplicateMode").map((s) => [s.model, s.field])).toEqual([
      ["rerank-as-chat", "mode"],
      ["chat-as-rerank", "mode"],
    ]);
  });

  it("duplicateEntryKeys finds repeated keys of one entry only, strings and escapes read as JSON", () => {
    expect(
      duplicateEntryKeys(
        '{"a": {"x": "\\"}", "x": 1, "y": [{"y": 1}]}, "b": {"x": 1}, "a2": {"k": {"k": 1}}}',
      ),
    ).toEqual(new Map([["a", new Set(["x"])]]));
  });
});
