import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type ApiReport,
  buildApiReport,
  entryPoints,
  renderApiReport,
  reportPath,
} from "../scripts/api-report.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("the public surface (api/exports.json)", () => {
  let report: ApiReport = {};
  // The compiler reads all of src: seconds, not milliseconds.
  beforeAll(() => {
    report = buildApiReport();
  }, 120_000);

  it("matches the checked-in report", () => {
    const current = renderApiReport(report);
    const checkedIn = readFileSync(reportPath, "utf8");
    if (current !== checkedIn)
      expect.fail(
        "The exports of @latch/core changed. Run `pnpm --filter @latch/core api:report`, " +
          "review the diff of packages/core/api/exports.json, and add a changeset " +
          "(`pnpm changeset`) that names what was added, moved or removed.\n" +
          diff(parseReport(checkedIn), report),
      );
  });

  it("covers every entry point in package.json exports", () => {
    expect(Object.keys(report).sort()).toEqual([...entryPoints().keys()].sort());
  });

  it("lists every root name in the README, and none twice across the root and ./adapter", () => {
    const root = [...(report["."]?.values ?? []), ...(report["."]?.types ?? [])];
    const adapter = new Set([...(report["./adapter"]?.values ?? []), ...(report["./adapter"]?.types ?? [])]);
    const section = /## The root API\n([\s\S]*?)\n## /.exec(README)?.[1] ?? "";
    expect(root.filter((name) => !section.includes(`\`${name}\``))).toEqual([]);
    expect(root.filter((name) => adapter.has(name))).toEqual([]);
  });
});

function parseReport(text: string): ApiReport {
  try {
    return JSON.parse(text) as ApiReport;
  } catch {
    return {};
  }
}

function diff(before: ApiReport, after: ApiReport): string {
  const lines: string[] = [];
  for (const entry of new Set([...Object.keys(before), ...Object.keys(after)])) {
    for (const kind of ["values", "types"] as const) {
      const was = new Set(before[entry]?.[kind] ?? []);
      const is = new Set(after[entry]?.[kind] ?? []);
      for (const name of is) if (!was.has(name)) lines.push(`  + ${entry} ${kind}: ${name}`);
      for (const name of was) if (!is.has(name)) lines.push(`  - ${entry} ${kind}: ${name}`);
    }
  }
  return lines.join("\n");
}
