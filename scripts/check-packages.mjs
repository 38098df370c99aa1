#!/usr/bin/env node
// Packs every public package (`pnpm pack`, so `publishConfig` and `workspace:` ranges are
// applied as on publish) and checks the tarball as a user would get it:
// - publint (package.json ↔ files) and @arethetypeswrong/cli (types resolve for ESM importers);
// - no `dev-source` condition, no `.tsbuildinfo`, no test files;
// - LICENSE, repository (with directory), homepage and engines.node present;
// - every source map's sources (JS and declaration maps) are in the tarball.
// Needs a build first (`pnpm build`). Exits 1 on the first package with a problem, listing all
// of that run's problems. Usage: node scripts/check-packages.mjs [package-dir…]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

function publicPackages() {
  return readdirSync(join(root, "packages"))
    .map((name) => join(root, "packages", name))
    .filter((dir) => {
      try {
        return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).private !== true;
      } catch {
        return false;
      }
    });
}

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Every file path under `dir`, relative, with `/`. */
function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? walk(join(dir, e.name), base)
      : [relative(base, join(dir, e.name)).split("\\").join("/")],
  );
}

function checkTarball(tarball, problems, source) {
  const unpacked = mkdtempSync(join(tmpdir(), "latch-pack-"));
  try {
    run("tar", ["xzf", tarball, "-C", unpacked], root);
    const pkgDir = join(unpacked, "package");
    const files = new Set(walk(pkgDir));
    const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    if (JSON.stringify(manifest.exports ?? {}).includes("dev-source"))
      problems.push('published "exports" keep the "dev-source" condition');
    if (JSON.stringify(manifest).includes("workspace:")) problems.push("a workspace: range was published");
    // Every entry point of the workspace manifest is published (publishConfig.exports is a
    // second list of them, easy to forget when a subpath is added).
    const wanted = Object.keys(source.exports ?? {})
      .sort()
      .join(", ");
    const published = Object.keys(manifest.exports ?? {})
      .sort()
      .join(", ");
    if (wanted !== published)
      problems.push(`published exports (${published}) differ from the workspace's (${wanted})`);
    for (const f of files) {
      if (f.endsWith(".tsbuildinfo")) problems.push(`ships ${f}`);
      if (/\.test\.[cm]?[jt]s$/.test(f)) problems.push(`ships the test file ${f}`);
    }
    if (!files.has("LICENSE")) problems.push("no LICENSE file");
    if (manifest.license !== "MIT") problems.push('license is not "MIT"');
    if (typeof manifest.repository?.url !== "string" || typeof manifest.repository?.directory !== "string")
      problems.push("repository needs url and directory");
    if (typeof manifest.homepage !== "string") problems.push("no homepage");
    if (typeof manifest.engines?.node !== "string") problems.push("no engines.node");
    let broken = 0;
    for (const f of files) {
      if (!f.endsWith(".map") || broken >= 5) continue;
      const map = JSON.parse(readFileSync(join(pkgDir, f), "utf8"));
      for (const source of map.sources ?? []) {
        const target = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? "", source));
        if (!files.has(target)) {
          problems.push(`${f} points at ${target}, which is not in the tarball`);
          broken++;
          break;
        }
      }
    }
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
}

const dirs =
  process.argv.length > 2 ? process.argv.slice(2).map((d) => join(process.cwd(), d)) : publicPackages();
const out = mkdtempSync(join(tmpdir(), "latch-tarballs-"));
let failed = 0;
try {
  for (const dir of dirs) {
    const source = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const name = source.name;
    const problems = [];
    const packed = run("pnpm", ["pack", "--pack-destination", out], dir).trim().split("\n").pop();
    const tarball = packed.startsWith("/") ? packed : join(out, packed);
    checkTarball(tarball, problems, source);
    try {
      run(bin("publint"), ["run", tarball, "--strict"], root);
    } catch (error) {
      problems.push(`publint:\n${error.stdout}${error.stderr}`);
    }
    try {
      run(bin("attw"), [tarball, "--profile", "esm-only", "--no-color", "--format", "table"], root);
    } catch (error) {
      problems.push(`@arethetypeswrong/cli:\n${error.stdout}${error.stderr}`);
    }
    if (problems.length === 0) console.log(`ok   ${name}`);
    else {
      failed++;
      console.log(`FAIL ${name}\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (failed > 0) {
  console.error(`check-packages: ${failed} of ${dirs.length} package(s) have packaging problems`);
  process.exit(1);
}
console.log(`check-packages: ${dirs.length} package(s) clean (publint, attw, tarball contents)`);
