import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * The public surface of `@latch/core`, read from source with the TypeScript compiler: for
 * each entry point in `package.json` `exports`, the names it exports, sorted, split into
 * values (functions, constants, classes) and types (interfaces, type aliases, and anything
 * exported with `export type`). `api/exports.json` is this report, checked in; a test
 * regenerates it and fails when the two differ, so a change to the surface is a visible
 * diff that needs a changeset.
 */
export interface EntryPointExports {
  readonly values: readonly string[];
  readonly types: readonly string[];
}

export type ApiReport = Readonly<Record<string, EntryPointExports>>;

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const reportPath = join(packageRoot, "api", "exports.json");

/** Entry points as `package.json` declares them: subpath → source file (its `dev-source`). */
export function entryPoints(): ReadonlyMap<string, string> {
  const manifest = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as {
    exports: Record<string, string | { "dev-source"?: string }>;
  };
  const entries = new Map<string, string>();
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === "string" || target["dev-source"] === undefined) continue;
    entries.set(subpath, join(packageRoot, target["dev-source"]));
  }
  return entries;
}

export function buildApiReport(): ApiReport {
  const entries = entryPoints();
  const program = ts.createProgram([...entries.values()], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const report: Record<string, EntryPointExports> = {};
  for (const [subpath, file] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const source = program.getSourceFile(file);
    const module = source === undefined ? undefined : checker.getSymbolAtLocation(source);
    if (module === undefined) throw new Error(`api-report: cannot read the module ${file}`);
    const values: string[] = [];
    const types: string[] = [];
    for (const symbol of checker.getExportsOfModule(module))
      (isValueExport(checker, symbol) ? values : types).push(symbol.name);
    report[subpath] = { values: values.sort(byCodePoint), types: types.sort(byCodePoint) };
  }
  return report;
}

export function renderApiReport(report: ApiReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** A value at run time: not type-only anywhere along its re-export chain, and a value where it is declared. */
function isValueExport(checker: ts.TypeChecker, exported: ts.Symbol): boolean {
  let symbol = exported;
  for (;;) {
    if (symbol.declarations?.some(isTypeOnlyDeclaration)) return false;
    if ((symbol.flags & ts.SymbolFlags.Alias) === 0) break;
    symbol = checker.getImmediateAliasedSymbol(symbol) ?? checker.getAliasedSymbol(symbol);
  }
  return (symbol.flags & ts.SymbolFlags.Value) !== 0;
}

function isTypeOnlyDeclaration(declaration: ts.Declaration): boolean {
  if (ts.isExportSpecifier(declaration) || ts.isImportSpecifier(declaration))
    return declaration.isTypeOnly || isTypeOnlyClause(declaration.parent.parent);
  return false;
}

function isTypeOnlyClause(node: ts.Node): boolean {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly;
  if (ts.isImportClause(node)) return node.isTypeOnly;
  return false;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The surface at the last release: `api/released.json`, rewritten by `api:release` after `changeset version`. */
export const releasedPath = join(packageRoot, "api", "released.json");
const changesetDir = join(packageRoot, "..", "..", ".changeset");

/** One difference between two reports: an entry point or a name added or removed. */
export interface SurfaceChange {
  readonly entry: string;
  /** Undefined when the whole entry point was added or removed. */
  readonly name?: string;
  readonly change: "added" | "removed";
}

/** What changed from `before` to `after`, entry points first, then names in code-point order. */
export function surfaceChanges(before: ApiReport, after: ApiReport): SurfaceChange[] {
  const changes: SurfaceChange[] = [];
  const entries = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort(byCodePoint);
  for (const entry of entries) {
    const was = before[entry];
    const is = after[entry];
    if (was === undefined || is === undefined) {
      changes.push({ entry, change: was === undefined ? "added" : "removed" });
      continue;
    }
    const wasNames = new Set([...was.values, ...was.types]);
    const isNames = new Set([...is.values, ...is.types]);
    for (const name of [...isNames].sort(byCodePoint))
      if (!wasNames.has(name)) changes.push({ entry, name, change: "added" });
    for (const name of [...wasNames].sort(byCodePoint))
      if (!isNames.has(name)) changes.push({ entry, name, change: "removed" });
  }
  return changes;
}

/** The bodies of the pending changesets that release `@latch/core` (frontmatter names it). */
export function pendingCoreChangesets(dir: string = changesetDir): string[] {
  const bodies: string[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".md") || file === "README.md") continue;
    const text = readFileSync(join(dir, file), "utf8");
    const front = /^---\n([\s\S]*?)\n---/.exec(text)?.[1] ?? "";
    if (/^\s*["']?@latch\/core["']?\s*:/m.test(front)) bodies.push(text);
  }
  return bodies;
}

/**
 * The changes no pending changeset covers. A name is covered when a changeset that releases
 * `@latch/core` mentions it in backticks; a whole entry point when one mentions its
 * specifier (`@latch/core/errors`). So a surface change cannot land without a changeset
 * that says what was added, moved or removed.
 */
export function uncoveredChanges(
  changes: readonly SurfaceChange[],
  changesets: readonly string[],
): SurfaceChange[] {
  const text = changesets.join("\n");
  return changes.filter((change) => {
    const entry = `@latch/core${change.entry === "." ? "" : change.entry.slice(1)}`;
    if (change.name === undefined) return !text.includes(`\`${entry}\``);
    return !text.includes(`\`${change.name}\``);
  });
}
