import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One Lua script ready for `defineCommand`: includes inlined, arity from the file name. */
export interface GeneratedScript {
  /** `reserve` for `reserve-4.lua`. */
  name: string;
  numberOfKeys: number;
  /** First 12 hex digits of the script's sha1: part of the command name, so two versions never collide. */
  version: string;
  lua: string;
}

const includePattern = /^--- @include "([\w/-]+)"$/;

/** Inlines `--- @include "includes/x"` lines (each include once per script; cycles are an error). */
function resolveIncludes(directory: string, source: string, seen: Set<string>, stack: string[]): string {
  return source
    .split("\n")
    .map((line) => {
      const match = includePattern.exec(line.trim());
      if (match === null) return line;
      const name = match[1] as string;
      if (stack.includes(name)) throw new Error(`Lua include cycle: ${[...stack, name].join(" -> ")}`);
      if (seen.has(name)) return "";
      seen.add(name);
      const included = readFileSync(join(directory, `${name}.lua`), "utf8");
      return resolveIncludes(directory, included, seen, [...stack, name]).trimEnd();
    })
    .join("\n");
}

/** Every `<name>-<numberOfKeys>.lua` of `directory`, sorted by name, with includes resolved. */
export function buildScripts(directory: string): GeneratedScript[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith(".lua"))
    .sort()
    .map((file) => {
      const match = /^(\w+)-(\d+)\.lua$/.exec(file);
      if (match === null) throw new Error(`Lua file ${file} is not named <name>-<numberOfKeys>.lua`);
      const lua = resolveIncludes(directory, readFileSync(join(directory, file), "utf8"), new Set(), []);
      const version = createHash("sha1").update(lua).digest("hex").slice(0, 12);
      return { name: match[1] as string, numberOfKeys: Number(match[2]), version, lua };
    });
}

/** A template literal holding `text` verbatim (readable Lua in the generated file, stable under biome). */
function templateLiteral(text: string): string {
  return `\`${text.replaceAll("\\", "\\\\").replaceAll("`", "\\`").replaceAll("${", "\\${")}\``;
}

/** One KEYS or ARGV entry of a script header: `KEYS[1] account: account hash (…)`. */
export interface HeaderField {
  /** The identifier before the colon: the field of the typed object the wrapper takes. */
  name: string;
  /** `ARGV[6] retentionMs?: …`: may be left out (only the last ARGV). */
  optional: boolean;
  /** The text after the colon, continuation lines joined. */
  doc: string;
}

/** One entry of a header's `Output:` section. */
export type HeaderReply =
  /** ` remaining  …`: a plain integer or string, not an array. */
  | { kind: "scalar"; name: string; doc: string }
  /** `{-1, stored}  …`: a status code, then fields. */
  | { kind: "status"; code: number; fields: string[]; doc: string }
  /** `{limit, spent, held}  …`: fields, no status. */
  | { kind: "tuple"; fields: string[]; doc: string }
  /** `{r1, r2, ...}  …`: one element per batch item. */
  | { kind: "list"; doc: string };

/** What a script header says: its purpose, KEYS and ARGV in order, and its replies. */
export interface ScriptHeader {
  /** The first sentence of the header's text. */
  summary: string;
  keys: HeaderField[];
  /** Fixed ARGV, in order. */
  args: HeaderField[];
  /** `ARGV[3i-2] eventId: …`: a group repeated per batch item (then there are no fixed ARGV). */
  items: HeaderField[] | undefined;
  replies: HeaderReply[];
}

const fieldPattern = /^(KEYS|ARGV)\[([^\]]+)\]\s+(\w+)(\?)?(?::\s*(.*))?$/;
const replyPattern = /^(\{[^}]*\}|\w+)(?:\s+(.*))?$/;
/** An Output entry starts within the first few columns; deeper lines continue the one above. */
const REPLY_INDENT = 6;

/**
 * Reads a script's header (its leading `--[[ … ]]` block):
 *
 *     Input:
 *       KEYS[1] account: account hash (…)        one line per key, `name: description`
 *       ARGV[1] holdId                           the name alone when it says enough
 *       ARGV[6] retentionMs?: …                  `?`: optional (the last ARGV only)
 *       ARGV[3i-2] eventId: of item i            a group repeated per batch item
 *     Output:
 *        remaining        …                     a plain integer or string reply
 *       {-1, stored}      …                     a status code, then fields
 *
 * Throws on a header the wrappers could not be generated from (a gap in the indices, a KEYS
 * count other than the file name's, an optional ARGV that is not last).
 */
export function parseHeader(script: Pick<GeneratedScript, "name" | "numberOfKeys" | "lua">): ScriptHeader {
  const fail = (why: string) => new Error(`Lua header of ${script.name}: ${why}`);
  const end = script.lua.indexOf("]]");
  if (!script.lua.startsWith("--[[") || end < 0) throw fail("no leading --[[ ]] block");
  const lines = script.lua.slice(4, end).split("\n");
  const input = lines.findIndex((line) => line.trim() === "Input:");
  const output = lines.findIndex((line) => line.trim() === "Output:");
  if (input < 0 || output < input) throw fail("expected Input: then Output:");

  const summary: string[] = [];
  for (const line of lines) {
    if (line.trim() === "" && summary.length > 0) break;
    if (line.trim() !== "") summary.push(line.trim());
  }

  const keys: HeaderField[] = [];
  const args: HeaderField[] = [];
  const grouped: Array<{ stride: number; offset: number; field: HeaderField }> = [];
  let last: HeaderField | undefined;
  for (const line of lines.slice(input + 1, output)) {
    const text = line.trim();
    if (text === "") {
      last = undefined;
      continue;
    }
    const match = fieldPattern.exec(text);
    if (match === null) {
      if (last === undefined || /^(KEYS|ARGV)\[/.test(text)) throw fail(`cannot read "${text}"`);
      last.doc = `${last.doc} ${text}`;
      continue;
    }
    const [, kind, index, name, optional, doc] = match as unknown as [
      string,
      string,
      string,
      string,
      string?,
      string?,
    ];
    last = { name, optional: optional === "?", doc: doc ?? name };
    const position = /^\d+$/.test(index) ? Number(index) : undefined;
    if (kind === "KEYS") {
      if (position !== keys.length + 1 || last.optional) throw fail(`KEYS[${index}] out of order`);
      keys.push(last);
    } else if (position !== undefined) {
      if (position !== args.length + 1) throw fail(`ARGV[${index}] out of order`);
      args.push(last);
    } else {
      const group = /^(\d+)i(?:-(\d+))?$/.exec(index);
      if (group === null) throw fail(`cannot read ARGV[${index}]`);
      grouped.push({ stride: Number(group[1]), offset: Number(group[2] ?? 0), field: last });
    }
  }
  if (keys.length !== script.numberOfKeys)
    throw fail(`lists ${keys.length} KEYS, not ${script.numberOfKeys}`);
  if (args.slice(0, -1).some((field) => field.optional)) throw fail("only the last ARGV may be optional");
  let items: HeaderField[] | undefined;
  if (grouped.length > 0) {
    const stride = grouped.length;
    if (args.length > 0) throw fail("fixed ARGV beside a repeated group");
    items = [...grouped]
      .sort((a, b) => b.offset - a.offset)
      .map((entry, i) => {
        if (entry.stride !== stride || entry.offset !== stride - 1 - i)
          throw fail("the ARGV group has a gap");
        if (entry.field.optional) throw fail("an ARGV group field cannot be optional");
        return entry.field;
      });
  }

  const replies: HeaderReply[] = [];
  for (const line of lines.slice(output + 1)) {
    const text = line.trim();
    if (text === "") continue;
    const indent = line.length - line.trimStart().length;
    const previous = replies[replies.length - 1];
    if (indent > REPLY_INDENT) {
      if (previous === undefined) throw fail(`cannot read "${text}"`);
      previous.doc = `${previous.doc} ${text}`;
      continue;
    }
    const match = replyPattern.exec(text);
    if (match === null) throw fail(`cannot read the reply "${text}"`);
    const shape = match[1] as string;
    const doc = match[2] ?? "";
    if (!shape.startsWith("{")) {
      replies.push({ kind: "scalar", name: shape, doc });
      continue;
    }
    const elements = shape
      .slice(1, -1)
      .split(",")
      .map((element) => element.trim());
    if (elements.includes("...")) replies.push({ kind: "list", doc });
    else if (/^-?\d+$/.test(elements[0] as string))
      replies.push({ kind: "status", code: Number(elements[0]), fields: elements.slice(1), doc });
    else replies.push({ kind: "tuple", fields: elements, doc });
  }
  if (replies.length === 0) throw fail("no replies under Output:");
  // The first sentence: the wrapper's TSDoc (the header itself says the rest).
  const sentence = /^.*?\.(?=\s|$)/.exec(summary.join(" "));
  return { summary: sentence?.[0] ?? summary.join(" "), keys, args, items, replies };
}

/** The status codes a header lists (leading integers of its replies), each once, in header order. */
export function headerStatuses(header: ScriptHeader): number[] {
  const codes = header.replies.flatMap((reply) => (reply.kind === "status" ? [reply.code] : []));
  return [...new Set(codes)];
}

/** biome's formatter's line width (biome.json): the generated file must be stable under it. */
const LINE_WIDTH = 110;

/**
 * `open` + `parts` + `close` on one line when it fits, else as biome lays it out: a union one
 * member a line behind `|`, a list one element a line with a trailing comma.
 */
function formatted(open: string, parts: readonly string[], close: string, indent: string): string {
  const union = open.endsWith("= ");
  const line = `${indent}${open}${parts.join(union ? " | " : ", ")}${close}`;
  if (line.length <= LINE_WIDTH) return line;
  if (union) return `${indent}${open.trimEnd()}\n${parts.map((p) => `${indent}  | ${p}`).join("\n")}${close}`;
  return `${indent}${open}\n${parts.map((p) => `${indent}  ${p},`).join("\n")}\n${indent}${close.trimStart()}`;
}

const typeName = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/** `text` in lines of at most `width` characters (a word longer than that keeps its own line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** A TSDoc comment of `paragraphs` (each a list item or a sentence run), wrapped to the line width. */
function docComment(paragraphs: readonly string[], indent: string): string {
  const single = `${indent}/** ${paragraphs[0]} */`;
  if (paragraphs.length === 1 && single.length <= LINE_WIDTH) return single;
  const width = LINE_WIDTH - indent.length - 3;
  const lines = paragraphs.flatMap((paragraph) =>
    wrap(paragraph, width).map((line, i) => (i > 0 && paragraph.startsWith("- ") ? `  ${line}` : line)),
  );
  return [`${indent}/**`, ...lines.map((line) => `${indent} * ${line}`.trimEnd()), `${indent} */`].join("\n");
}

function fieldsInterface(name: string, doc: string, fields: readonly HeaderField[]): string {
  const body = fields
    .map((f) => `${docComment([f.doc], "  ")}\n  readonly ${f.name}${f.optional ? "?" : ""}: string;`)
    .join("\n");
  return `${docComment([doc], "")}\nexport interface ${name} {\n${body}\n}`;
}

function replyType(reply: HeaderReply): string {
  switch (reply.kind) {
    case "scalar":
      return "ReplyValue";
    case "list":
      return "readonly ReplyValue[]";
    case "status":
      return `readonly [${[String(reply.code), ...reply.fields.map(() => "ReplyValue")].join(", ")}]`;
    case "tuple":
      return `readonly [${reply.fields.map(() => "ReplyValue").join(", ")}]`;
  }
}

function replyLabel(reply: HeaderReply): string {
  switch (reply.kind) {
    case "scalar":
      return reply.name;
    case "list":
      return "{r1, r2, ...}";
    case "status":
      return `{${[String(reply.code), ...reply.fields].join(", ")}}`;
    case "tuple":
      return `{${reply.fields.join(", ")}}`;
  }
}

/** The typed declarations and the wrapper method of one script. */
function renderWrapper(script: GeneratedScript, header: ScriptHeader): { types: string; method: string } {
  const type = typeName(script.name);
  const file = `${script.name}-${script.numberOfKeys}.lua`;
  const types: string[] = [`// ${file}`, fieldsInterface(`${type}Keys`, `KEYS of \`${file}\`.`, header.keys)];
  const params = [`keys: ${type}Keys`];
  if (header.items !== undefined) {
    types.push(fieldsInterface(`${type}Item`, `ARGV of \`${file}\` for one batch item.`, header.items));
    types.push(
      `${docComment([`ARGV of \`${file}\`.`], "")}\nexport interface ${type}Args {\n` +
        `  /** One group of ARGV per item, in order. */\n  readonly items: readonly ${type}Item[];\n}`,
    );
    params.push(`args: ${type}Args`);
  } else if (header.args.length > 0) {
    types.push(fieldsInterface(`${type}Args`, `ARGV of \`${file}\`.`, header.args));
    params.push(`args: ${type}Args`);
  }
  const replyTypes = [...new Set(header.replies.map(replyType))];
  const replyDoc = [
    `Replies of \`${file}\`:`,
    ...header.replies.map((r) => `- \`${replyLabel(r)}\` ${r.doc}`),
  ];
  types.push(`${docComment(replyDoc, "")}\n${formatted(`export type ${type}Reply = `, replyTypes, ";", "")}`);

  const fixedArgs = header.args.filter((f) => !f.optional);
  const optional = header.args.find((f) => f.optional);
  const values = [...header.keys.map((f) => `keys.${f.name}`), ...fixedArgs.map((f) => `args.${f.name}`)];
  const body: string[] = [];
  const mutable = header.items !== undefined || optional !== undefined;
  body.push(formatted(`const argv${mutable ? ": string[]" : ""} = [`, values, "];", "    "));
  if (header.items !== undefined) {
    const fields = header.items.map((f) => `item.${f.name}`);
    body.push(
      "    for (const item of args.items) {",
      formatted("argv.push(", fields, ");", "      "),
      "    }",
    );
  }
  if (optional !== undefined) {
    body.push(`    if (args.${optional.name} !== undefined) argv.push(args.${optional.name});`);
  }
  const scalar = header.replies.some((r) => r.kind === "scalar");
  body.push(
    `    return this.#send(${JSON.stringify(script.name)}, argv, ${scalar}) as Promise<${type}Reply>;`,
  );
  const method = [
    docComment([`${header.summary} (\`${file}\`)`], "  "),
    `  ${script.name}(${params.join(", ")}): Promise<${type}Reply> {`,
    ...body,
    "  }",
  ].join("\n");
  return { types: types.join("\n\n"), method };
}

/** The text of `src/lua/generated.ts` for these scripts. */
export function renderGeneratedModule(scripts: readonly GeneratedScript[]): string {
  const entries = scripts
    .map(
      (s) =>
        `  ${s.name}: {\n    name: ${JSON.stringify(s.name)},\n    numberOfKeys: ${s.numberOfKeys},\n` +
        `    version: ${JSON.stringify(s.version)},\n    lua: ${templateLiteral(s.lua)},\n  },`,
    )
    .join("\n");
  const headers = scripts.map((s) => ({ script: s, header: parseHeader(s) }));
  const statuses = headers
    .map(({ script, header }) => `  ${script.name}: [${headerStatuses(header).join(", ")}],`)
    .join("\n");
  const wrappers = headers.map(({ script, header }) => renderWrapper(script, header));
  return [
    "// Generated by `pnpm --filter @latch/redis generate:lua` from src/lua/*.lua: do not edit.",
    "// test/lua-generated.test.ts fails when this file is stale.",
    "",
    "export const LUA_SCRIPTS = {",
    entries,
    "} as const;",
    "",
    "export type LuaScriptName = keyof typeof LUA_SCRIPTS;",
    "",
    "/** The status codes each script's header lists under Output (negative ones are failures). */",
    "export const SCRIPT_STATUSES: { readonly [name in LuaScriptName]: readonly number[] } = {",
    statuses,
    "};",
    "",
    "/** One element of a script's reply: Redis replies a Lua integer as a number, a Lua string as a string. */",
    "export type ReplyValue = string | number;",
    "",
    "/**",
    " * Sends one script: `keysAndArgs` is its KEYS then its ARGV; `scalar` when its header lists a",
    " * reply that is not an array.",
    " */",
    "export type ScriptSender = (name: LuaScriptName, keysAndArgs: string[], scalar: boolean) => Promise<unknown>;",
    "",
    wrappers.map((w) => w.types).join("\n\n"),
    "",
    "/** One method per script: it takes the script's KEYS and ARGV by name and sends them in header order. */",
    "export class LuaScripts {",
    "  readonly #send: ScriptSender;",
    "",
    "  constructor(send: ScriptSender) {",
    "    this.#send = send;",
    "  }",
    "",
    wrappers.map((w) => w.method).join("\n\n"),
    "}",
    "",
  ].join("\n");
}
