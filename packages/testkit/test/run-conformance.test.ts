import { afterAll, describe, expect, it } from "vitest";
import { type ConformanceSuite, runConformance } from "../src/index.js";

// The harness itself: hooks once per backend, suites under its name, nothing to switch off.
const calls: string[] = [];

/** A suite that records the order it runs in. */
function recording(name: string): ConformanceSuite {
  return {
    name,
    register: (title) => {
      describe(title, () => {
        it("runs after the backend's set-up", () => {
          calls.push(`${title}: test 1`);
          expect(calls.filter((c) => c === "setup")).toEqual(["setup"]);
        });
        it("runs every test once, in order", () => {
          calls.push(`${title}: test 2`);
        });
      });
    },
  };
}

runConformance({
  name: "recording backend",
  setup: async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    calls.push("setup");
  },
  teardown: () => {
    calls.push("teardown");
  },
  suites: [recording("First"), recording("Second")],
});

describe("runConformance", () => {
  it("ran set-up once before the first test, each suite's tests in order, tear-down once after the last", () => {
    expect(calls).toEqual([
      "setup",
      "First: test 1",
      "First: test 2",
      "Second: test 1",
      "Second: test 2",
      "teardown",
    ]);
  });

  it("refuses an empty list of suites: a backend must run something", () => {
    expect(() => runConformance({ name: "nothing", suites: [] })).toThrow("no suites");
  });
});

afterAll(() => {
  expect(calls.filter((c) => c === "teardown")).toEqual(["teardown"]);
});
