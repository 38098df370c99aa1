import { describe, expect, it } from "vitest";
import { formatCatalogDiff, printableText } from "../src/index.js";

describe("printableText: model ids from a third-party list, safe for a terminal", () => {
  it("escapes bidirectional controls, which can reorder what a line appears to say", () => {
    expect(printableText("gpt-4o\u202Egnp.exe")).toBe("gpt-4o\\u202egnp.exe");
    expect(printableText("a\u2066b\u2069c\u200Fd\u061Ce")).toBe("a\\u2066b\\u2069c\\u200fd\\u061ce");
    expect(printableText("line\u2028break")).toBe("line\\u2028break");
  });
  it("escapes C0, DEL and C1 controls; leaves other text alone", () => {
    expect(printableText("x\u001b[2J\u007f\u009b")).toBe("x\\u001b[2J\\u007f\\u009b");
    expect(printableText("claude-sonnet-4 · 日本語 ✓")).toBe("claude-sonnet-4 · 日本語 ✓");
  });
  it("is what the diff summary shows", () => {
    const text = formatCatalogDiff({
      added: [{ key: "m\u202Eodel" }],
      changed: [],
      removed: [],
      unchanged: 0,
    });
    expect(text).toBe("prices changed: 0, added: 1, removed: 0, unchanged: 0\n+ m\\u202eodel");
  });
});
