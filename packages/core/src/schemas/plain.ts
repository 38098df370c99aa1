/**
 * Reading an untrusted object the way a zod object schema reads it, for the hot-path pre-checks
 * (`observation/fast-parse.ts`, `normalize/fast-read.ts`): which values count as a plain object,
 * and a member read exactly once. A pre-check built on these can only be stricter than its
 * schema: anything else goes to the schema, which owns every message.
 *
 * @packageDocumentation
 */

/** An object read member by member. */
export type Plain = Record<string, unknown>;

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * `value` when it is a plain object (prototype `Object.prototype` or `null`), else `undefined`.
 * Symbol keys need no check here: a zod object reads its keys by name (shape) or with `for…in`
 * (strict), which skips them, so the schema's output has none either (a record is different).
 */
export function plain(value: unknown): Plain | undefined {
  // An array is never one, whatever its prototype (zod's isObject), nor a Proxy of one.
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== OBJECT_PROTOTYPE && prototype !== null) return undefined;
  return value as Plain;
}

/** A member that is not there (see {@link memberOf}). */
export const ABSENT: unique symbol = Symbol("absent");

/**
 * The member `key` of `value`, read exactly once (an accessor or a Proxy may answer differently
 * each time, and what is copied must be exactly what was checked); {@link ABSENT} when `value`
 * has no such member (own or inherited: `key in value`, as the schema tells absent from
 * present). A member present as `undefined` is `undefined`.
 */
export function memberOf(value: Plain, key: string): unknown {
  return key in value ? value[key] : ABSENT;
}
