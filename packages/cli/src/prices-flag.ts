import { access } from "node:fs/promises";
import { deprecatedText, text } from "./command.js";
import type { CliContext } from "./context.js";
import { DEFAULT_PRICE_FILE } from "./defaults.js";
import { CommandError, UsageError } from "./exit-codes.js";

/**
 * The one price-file flag of every command: `--prices <file>`, else `LATCH_PRICES_FILE`, else
 * `./latch-prices.json`. `--prices-file` (what `latch prices` used to call it) still works, with
 * a deprecation warning.
 */
export const PRICES_OPTIONS = [
  text(
    "--prices <file>",
    `the price file: Latch snapshot JSON or a LiteLLM cost map (env LATCH_PRICES_FILE, default ${DEFAULT_PRICE_FILE})`,
  ),
  deprecatedText("--prices-file <file>", "deprecated alias of --prices"),
] as const;

/** Where the price file is, and which of the flag, the environment or the default named it. */
export interface PricesPath {
  path: string;
  /** How the user named it, for messages: `--prices`, `LATCH_PRICES_FILE` or the default. */
  from: "--prices" | "LATCH_PRICES_FILE" | "default";
}

/** Resolves `--prices` / `--prices-file` / `LATCH_PRICES_FILE` / the default; warns on the old flag. */
export function pricesPath(
  options: { prices?: string | undefined; pricesFile?: string | undefined },
  ctx: CliContext,
): PricesPath {
  if (options.pricesFile !== undefined) {
    if (options.prices !== undefined && options.prices !== options.pricesFile) {
      throw new UsageError("--prices-file: a deprecated alias of --prices; give only one of them");
    }
    ctx.stderr.write("latch: warning: --prices-file is deprecated; use --prices\n");
    return { path: options.pricesFile, from: "--prices" };
  }
  if (options.prices !== undefined) return { path: options.prices, from: "--prices" };
  const env = ctx.env.LATCH_PRICES_FILE;
  if (env !== undefined && env !== "") return { path: env, from: "LATCH_PRICES_FILE" };
  return { path: DEFAULT_PRICE_FILE, from: "default" };
}

/** How to point at another price file, said after a message about this one. */
export function pricesHint(p: PricesPath): string {
  const named =
    p.from === "--prices"
      ? `named by --prices`
      : p.from === "LATCH_PRICES_FILE"
        ? "named by LATCH_PRICES_FILE"
        : "the default; name another with --prices <file> or LATCH_PRICES_FILE";
  return `${p.path} (${named})`;
}

/**
 * Fails with a message about the price file, never about a model, when it does not exist:
 * "price file … is missing", the flag and variable that name it, and how to create one.
 */
export async function requirePriceFile(p: PricesPath): Promise<void> {
  try {
    await access(p.path);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") return; // unreadable: the read says why
    throw new CommandError(
      `the price file is missing: ${pricesHint(p)} does not exist; create it with \`latch prices import <LiteLLM cost map or Latch snapshots>\``,
    );
  }
}
