import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type ApiReport,
  buildApiReport,
  entryPoints,
  pendingCoreChangesets,
  releasedPath,
  renderApiReport,
  reportPath,
  surfaceChanges,
  uncoveredChanges,
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

  it("has a pending changeset naming every change since the last release (api/released.json)", () => {
    const released = parseReport(readFileSync(releasedPath, "utf8"));
    const missing = uncoveredChanges(surfaceChanges(released, report), pendingCoreChangesets());
    if (missing.length > 0)
      expect.fail(
        "The public surface of @latch/core changed since the last release without a changeset " +
          "that names each change. Add one (`pnpm changeset`, releasing @latch/core) that " +
          "mentions each name below in backticks (an entry point by its specifier, e.g. " +
          "`@latch/core/errors`):\n" +
          missing
            .map((c) => `  ${c.change} ${c.entry}${c.name === undefined ? "" : ` ${c.name}`}`)
            .join("\n"),
      );
  });

  it("lists every root name in the README, and none twice across the root and ./adapter", () => {
    const root = [...(report["."]?.values ?? []), ...(report["."]?.types ?? [])];
    const adapter = new Set([...(report["./adapter"]?.values ?? []), ...(report["./adapter"]?.types ?? [])]);
    const section = /## The root API\n([\s\S]*?)\n## /.exec(README)?.[1] ?? "";
    expect(root.filter((name) => !section.includes(`\`${name}\``))).toEqual([]);
    expect(root.filter((name) => adapter.has(name))).toEqual([]);
  });
});

describe("changeset coverage of surface changes", () => {
  const before = { ".": { values: ["a", "moved"], types: ["T"] } };
  const after = {
    ".": { values: ["a", "added"], types: ["T"] },
    "./errors": { values: ["moved"], types: [] },
  };
  const changes = surfaceChanges(before, after);

  it("lists added and removed names and entry points", () => {
    expect(changes).toEqual([
      { entry: ".", name: "added", change: "added" },
      { entry: ".", name: "moved", change: "removed" },
      { entry: "./errors", change: "added" },
    ]);
  });

  it("counts a change covered only when a changeset releasing @latch/core names it in backticks", () => {
    const core = '---\n"@latch/core": minor\n---\n\n`added` is new; `moved` moved to `@latch/core/errors`.\n';
    expect(uncoveredChanges(changes, [core])).toEqual([]);
    expect(uncoveredChanges(changes, ["---\n---\nadded moved @latch/core/errors"])).toHaveLength(3);
    expect(uncoveredChanges(changes, [])).toHaveLength(3);
  });

  it("reads only changesets whose frontmatter releases @latch/core", () => {
    const dir = mkdtempSync(join(tmpdir(), "latch-changesets-"));
    try {
      writeFileSync(join(dir, "a.md"), '---\n"@latch/core": patch\n---\n\n`x`\n');
      writeFileSync(join(dir, "b.md"), '---\n"@latch/redis": patch\n---\n\nmentions @latch/core: `y`\n');
      writeFileSync(join(dir, "README.md"), "`z`");
      expect(pendingCoreChangesets(dir)).toEqual(['---\n"@latch/core": patch\n---\n\n`x`\n']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
