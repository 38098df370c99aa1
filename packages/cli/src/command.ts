import { type Command, Option } from "commander";
import type { CliContext } from "./context.js";

/**
 * Typed command definitions: each command module declares its name, description, arguments
 * and options once, the option values' type is inferred from those declarations (as
 * commander's extra-typings does), and `program.ts` only registers the definitions.
 */

/** `-o, --out <file>` → `out`; `--no-progress` → `no-progress`. */
type LongFlag<F extends string> = F extends `${string}--${infer Rest}`
  ? Rest extends `${infer Name} ${string}`
    ? Name
    : Rest
  : never;
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;
/** The key commander stores a flag's value under: `--database-url <url>` → `databaseUrl`, `--no-progress` → `progress`. */
export type AttributeName<F extends string> = CamelCase<
  LongFlag<F> extends `no-${infer Name}` ? Name : LongFlag<F>
>;

/** One option: how to build its commander `Option`, and (for the type checker) its value's type. */
export interface OptionDef<F extends string = string, V = unknown> {
  readonly flags: F;
  build(): Option;
  /** Never set: carries the parsed value's type. */
  readonly valueType?: V;
}

/** The parsed options of a list of definitions, keyed as commander keys them. */
export type OptionValues<Defs extends readonly OptionDef[]> = {
  [D in Defs[number] as AttributeName<D["flags"]>]: D extends OptionDef<string, infer V> ? V : never;
};

function def<F extends string, V>(flags: F, build: () => Option): OptionDef<F, V> {
  return { flags, build };
}

/** A boolean switch, `false` unless given (`--json`). */
export function flag<const F extends string>(flags: F, description: string): OptionDef<F, boolean> {
  return def(flags, () => new Option(flags, description).default(false));
}

/** A negated switch, `true` unless given (`--no-progress` → `progress`). */
export function negatedFlag<const F extends `--no-${string}`>(
  flags: F,
  description: string,
): OptionDef<F, boolean> {
  return def(flags, () => new Option(flags, description));
}

interface TextOptions {
  /** Read from this environment variable when the flag is absent (commander reads `process.env`). */
  env?: string;
}

/** A flag with a value (`--to <time>`): the string given, else the default (when there is one). */
export function text<const F extends string>(
  flags: F,
  description: string,
  options?: TextOptions,
): OptionDef<F, string | undefined>;
export function text<const F extends string>(
  flags: F,
  description: string,
  options: TextOptions & { default: string },
): OptionDef<F, string>;
export function text<const F extends string>(
  flags: F,
  description: string,
  options: TextOptions & { default?: string } = {},
): OptionDef<F, string | undefined> {
  return def(flags, () => {
    const option = new Option(flags, description);
    if (options.env !== undefined) option.env(options.env);
    if (options.default !== undefined) option.default(options.default);
    return option;
  });
}

/** A deprecated flag with a value, still accepted but left out of `--help`. */
export function deprecatedText<const F extends string>(
  flags: F,
  description: string,
): OptionDef<F, string | undefined> {
  return def(flags, () => new Option(flags, description).hideHelp());
}

/** A deprecated switch, still accepted but left out of `--help`. */
export function deprecatedFlag<const F extends string>(flags: F, description: string): OptionDef<F, boolean> {
  return def(flags, () => new Option(flags, description).default(false).hideHelp());
}

/** A flag whose value is one of `choices` (anything else is a usage error). */
export function oneOf<const F extends string, const C extends readonly string[]>(
  flags: F,
  description: string,
  choices: C,
): OptionDef<F, C[number] | undefined> {
  return def(flags, () => new Option(flags, description).choices(choices));
}

/** A flag taking one or more values (`--records <files...>`). */
export function list<const F extends `${string}...>`>(
  flags: F,
  description: string,
): OptionDef<F, string[] | undefined> {
  return def(flags, () => new Option(flags, description));
}

/** A positional argument, e.g. `{ name: "<file>", description: "…" }`. */
export interface ArgumentDef {
  name: string;
  description: string;
}

/** A `latch` command: what `--help` shows, its options and what it runs. */
export interface CommandDef<
  O extends readonly OptionDef[] = readonly OptionDef[],
  A extends readonly ArgumentDef[] = readonly ArgumentDef[],
> {
  name: string;
  description: string;
  arguments?: A;
  options?: O;
  /** Help text after the options (the exit codes follow on every command). */
  helpAfter?: string;
  /** Subcommands (`latch prices import`, `latch export status`). */
  commands?: readonly CommandDef[];
  /** Runs the command; implementations are imported lazily, so `latch --help` loads none of them. */
  action?: (args: { [I in keyof A]: string }, options: OptionValues<O>, ctx: CliContext) => Promise<unknown>;
}

/** Declares a command; its action's option type is inferred from `options`. */
export function defineCommand<
  const O extends readonly OptionDef[],
  const A extends readonly ArgumentDef[] = [],
>(command: CommandDef<O, A>): CommandDef {
  return command as unknown as CommandDef;
}

/** Adds `definition` (and its subcommands) to `parent`; `helpAfter` is the text every command ends with. */
export function registerCommand(
  parent: Command,
  definition: CommandDef,
  ctx: CliContext,
  helpAfter: string,
): Command {
  const command = parent.command(definition.name).description(definition.description);
  for (const argument of definition.arguments ?? []) command.argument(argument.name, argument.description);
  for (const option of definition.options ?? []) command.addOption(option.build());
  command.addHelpText(
    "after",
    definition.helpAfter === undefined ? helpAfter : `${definition.helpAfter}${helpAfter}`,
  );
  const action = definition.action;
  if (action !== undefined) {
    const count = definition.arguments?.length ?? 0;
    command.action(async (...values: unknown[]) => {
      await action(
        values.slice(0, count) as string[],
        values[count] as OptionValues<readonly OptionDef[]>,
        ctx,
      );
    });
  }
  for (const sub of definition.commands ?? []) registerCommand(command, sub, ctx, helpAfter);
  return command;
}
