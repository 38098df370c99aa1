#!/usr/bin/env node
// Dry run of `changeset version` on the current changesets, in a throwaway copy of the
// tracked files (nothing here is modified): every public package must stay below 1.0.0 (a
// `workspace:^` peer range on core made changesets bump 0.x packages to 1.0.0) and no private
// package (bench, examples) may be versioned. Usage: node scripts/check-release-plan.mjs
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const copy = mkdtempSync(join(tmpdir(), "latch-release-plan-"));
const git = (args, cwd) =>
  execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

function manifests(dir) {
  return ["packages", "examples"].flatMap((group) =>
    readdirSync(join(dir, group)).flatMap((name) => {
      try {
        return [
          {
            path: `${group}/${name}`,
            ...JSON.parse(readFileSync(join(dir, group, name, "package.json"), "utf8")),
          },
        ];
      } catch {
        return [];
      }
    }),
  );
}

const problems = [];
try {
  // Tracked and new (not ignored) files, as they are in the work tree now.
  const files = git(["ls-files", "--cached", "--others", "--exclude-standard", "-z"], root)
    .split("\0")
    .filter(Boolean);
  for (const file of files) {
    mkdirSync(join(copy, dirname(file)), { recursive: true });
    try {
      cpSync(join(root, file), join(copy, file));
    } catch {} // deleted in the work tree but still in the index
  }
  git(["init", "-q"], copy);
  git(["add", "-A"], copy);
  git(["-c", "user.email=ci@latch.invalid", "-c", "user.name=ci", "commit", "-qm", "base"], copy);
  const before = new Map(manifests(copy).map((m) => [m.name, m.version]));
  execFileSync(join(root, "node_modules", ".bin", "changeset"), ["version"], { cwd: copy, stdio: "pipe" });
  for (const m of manifests(copy)) {
    const was = before.get(m.name);
    if (m.private === true && m.version !== was)
      problems.push(`${m.name} is private but was versioned ${was} → ${m.version}`);
    if (m.private !== true && !/^0\./.test(m.version))
      problems.push(`${m.name} would be released as ${m.version}, not 0.x`);
    if (m.private !== true) console.log(`${m.name}: ${was} → ${m.version}`);
  }
  const changed = git(["status", "--porcelain"], copy)
    .split("\n")
    .filter((l) => /^(examples|packages\/bench)\//.test(l.slice(3)) && l.includes("CHANGELOG"));
  for (const l of changed) problems.push(`a private package got a changelog: ${l.slice(3)}`);
} finally {
  rmSync(copy, { recursive: true, force: true });
}
if (problems.length > 0) {
  console.error(`check-release-plan:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  process.exit(1);
}
console.log("check-release-plan: changeset version gives 0.x versions and leaves private packages alone");
