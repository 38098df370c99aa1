import { types } from "node:util";
import { z } from "zod";
import { parseWith } from "../schemas/parse.js";
import { type Plain, plain } from "../schemas/plain.js";

/**
 * The schema builders of the provider normalizers, each of which also derives, from the same
 * shape, a fast reader of its schema: the schema's output for a value it plainly accepts
 * unchanged, else a refusal, and the schema parses the value (it owns every message). Like
 * `observation/fast-parse.ts`, a reader can only be stricter than its schema: plain objects
 * (any other prototype goes to the schema), counts the schema takes as they are, strings,
 * arrays. What it returns is exactly what zod returns: the shape's keys in the shape's order,
 * unknown keys dropped, an optional member absent from the input absent from the output and
 * one present as `undefined` present as `undefined`, `null` kept, `-0` kept. Each member is read
 * once, then `key in value` asked as zod asks it, where the answer can differ from the read's
 * (a member read as `undefined`, any member of a Proxy, whose `has` may deny a member its `get`
 * gives: absent for the reader as for the schema), and the value read is the value checked and
 * copied (an accessor or a Proxy may answer differently on a second read).
 *
 * A schema built any other way (say a string with a check) has no reader, nor has an object or
 * array holding one: it always goes to the schema. `test/normalize/fast-read.test.ts` compares
 * every usage and response schema's reader with the schema over valid and hostile inputs.
 *
 * Why: every call the gateway records parses its provider's response wrapper and usage, and
 * zod's parse (a payload, an issue list and a dispatch per member) showed in its CPU profile
 * under each normalizer; a valid payload now costs one object per object it holds.
 *
 * @packageDocumentation
 */

/** What a reader answers when the value must go to the schema. */
const REFUSED: unique symbol = Symbol("refused");

/** The schema's output for `value`, or {@link REFUSED}. */
type Read = (value: unknown) => unknown;

/**
 * How a schema's values are read without zod. `undefined` and `null` are told by flags, not by
 * a call: most optional members of a usage object are absent or `null`.
 */
interface Reader {
  /** Reads a value other than `undefined` and `null`. */
  readonly present: Read;
  /** An object may lack the member (zod's `optional`): absent stays absent in the output. */
  readonly absentOk: boolean;
  /** `undefined` is accepted as is (a member present as `undefined` stays so). */
  readonly undefinedOk: boolean;
  /** `null` is accepted as is. */
  readonly nullOk: boolean;
}

/** The reader of each schema built here, by schema (a schema built elsewhere has none). */
const READERS = new WeakMap<z.ZodType, Reader>();

function withReader<S extends z.ZodType>(schema: S, reader: Reader | undefined): S {
  if (reader !== undefined) READERS.set(schema, reader);
  return schema;
}

/** Any value, as `reader` reads it. */
function readValue(reader: Reader, value: unknown): unknown {
  if (value === undefined) return reader.undefinedOk ? value : REFUSED;
  if (value === null) return reader.nullOk ? value : REFUSED;
  return reader.present(value);
}

/**
 * `schema`, whose values are read as they are when `accepts(value)`: a schema that returns
 * what it accepts unchanged (no transform, no default), and `accepts` must hold for nothing
 * the schema refuses (e.g. `isQuantity` for `QuantitySchema`). Absent from an object, the
 * member goes to the schema.
 */
export function accepting<S extends z.ZodType>(schema: S, accepts: (value: unknown) => boolean): S {
  return withReader(schema, {
    present: (value) => (accepts(value) ? value : REFUSED),
    absentOk: false,
    undefinedOk: accepts(undefined),
    nullOk: accepts(null),
  });
}

/** Any string, as is (none of zod's string checks: "" and lone surrogates are strings too). */
export const anyString = accepting(
  z.string({ error: "expected a string" }),
  (value) => typeof value === "string",
);

/** Any value, `undefined` and `null` included, as is (a member the normalizer reads itself). */
export const anyValue = accepting(z.unknown(), () => true);

/** `schema`, or absent or `undefined`. */
export function optional<S extends z.ZodType>(schema: S) {
  const inner = READERS.get(schema);
  return withReader(schema.optional(), inner && { ...inner, absentOk: true, undefinedOk: true });
}

/** `schema`, or absent, `undefined` or `null` (providers and their SDKs send both). */
export function nullish<S extends z.ZodType>(schema: S) {
  const inner = READERS.get(schema);
  return withReader(schema.nullish(), inner && { ...inner, absentOk: true, undefinedOk: true, nullOk: true });
}

/** An array of `item`s (zod reads any array, whatever its prototype, into a plain one). */
export function list<S extends z.ZodType>(item: S) {
  const inner = READERS.get(item);
  return withReader(
    z.array(item, { error: "expected an array" }),
    inner && { present: listOf(inner), absentOk: false, undefinedOk: false, nullOk: false },
  );
}

function listOf(item: Reader): Read {
  return (input) => {
    if (!Array.isArray(input)) return REFUSED;
    const length = input.length;
    const out: unknown[] = new Array(length);
    for (let i = 0; i < length; i++) {
      const read = readValue(item, input[i]); // a hole reads `undefined`, as zod reads it
      if (read === REFUSED) return REFUSED;
      out[i] = read;
    }
    return out;
  };
}

/** An object of the `shape`'s members (unknown members tolerated and dropped, as zod's default does). */
export function object<T extends z.ZodRawShape>(shape: T) {
  return withReader(z.object(shape, { error: "expected an object" }), objectReader(shape));
}

/** The reader of a `z.object(shape)`, when every member of the shape has one. */
function objectReader(shape: z.ZodRawShape): Reader | undefined {
  // zod skips a `__proto__` member and reads symbol members: leave such shapes to it.
  if (Object.getOwnPropertySymbols(shape).length > 0 || Object.hasOwn(shape, "__proto__")) return undefined;
  const keys = Object.keys(shape);
  const members: Reader[] = [];
  for (const key of keys) {
    const reader = READERS.get(shape[key] as z.ZodType);
    if (reader === undefined) return undefined;
    members.push(reader);
  }
  const size = keys.length;
  const present: Read = (input) => {
    const value = plain(input);
    if (value === undefined) return REFUSED;
    const proxy = types.isProxy(value); // once per object, not a `key in value` per member
    const out: Plain = {};
    for (let i = 0; i < size; i++) {
      const key = keys[i] as string;
      const member = members[i] as Reader;
      // Read once, then asked whether present (zod's order) when it reads `undefined`, or always
      // of a Proxy: only a Proxy's `has` can deny a member its `get` gives, and zod then takes
      // the member as absent (an optional one left out, a required one refused), so the reader
      // must too. A plain object answers both alike (its prototype is no Proxy: see `plain`).
      const got = value[key];
      if ((got === undefined || proxy) && !(key in value)) {
        if (member.absentOk) continue; // absent stays absent
        return REFUSED; // a required member: the schema names it
      }
      if (got === undefined) {
        if (!member.undefinedOk) return REFUSED;
        out[key] = got; // present as `undefined` stays so
      } else if (got === null) {
        if (!member.nullOk) return REFUSED;
        out[key] = got;
      } else {
        const read = member.present(got);
        if (read === REFUSED) return REFUSED;
        out[key] = read;
      }
    }
    return out;
  };
  return { present, absentOk: false, undefinedOk: false, nullOk: false };
}

/**
 * The output of the object `schema` for `value` when its reader accepts it (exactly what the
 * schema would return), else `undefined`: the schema has no reader, or must parse `value`.
 */
export function fastParse<S extends z.ZodObject>(schema: S, value: unknown): z.output<S> | undefined {
  const reader = READERS.get(schema);
  if (reader === undefined) return undefined;
  const out = readValue(reader, value);
  return out === REFUSED ? undefined : (out as z.output<S>);
}

/**
 * `parseWith` with the object `schema`'s reader first: its output when the reader accepts
 * `value`, else the schema's (or its `LatchValidationError`, naming each bad field).
 */
export function parseFast<S extends z.ZodObject>(
  schema: S,
  value: unknown,
  subject: string,
  prefix = "",
): z.output<S> {
  return fastParse(schema, value) ?? parseWith(schema, value, subject, prefix);
}
