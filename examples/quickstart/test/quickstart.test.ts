import { describe, expect, it } from "vitest";
import { runQuickstart } from "../src/quickstart.js";

describe("quickstart", () => {
  it("rates the cached OpenAI call against the February price sheet", () => {
    const { record, lines } = runQuickstart();
    // 500 × 2.5 + 1500 × 1.25 + 500 × 10 = 1250 + 1875 + 5000 = 8125 millionths
    expect(record.total).toBe("0.008125");
    expect(record.snapshotId).toBe("openai:gpt-4o:2026-01");
    expect(lines.at(-1)).toBe("invoice   0.01 USD (rounded once, to minor units, half-even)");
  });
});
