import { readFileSync } from "node:fs";
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
