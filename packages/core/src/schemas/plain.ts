/**
 * The object tests the zod-free pre-checks share (`observation/fast-parse.ts`,
 * `contracts/reserve-request.ts`, `facade/fast-reserve.ts`): what a strict object schema would
 * read, narrowed to the objects a pre-check may take as they are. Anything these refuse goes
 * to the schema, which owns every message, so they may be stricter than zod, never looser.
 *
 * @packageDocumentation
 */

/** An object read member by member (see {@link plainObject}). */
export type PlainObject = Record<string, unknown>;

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * `value` when it is a plain object (prototype `Object.prototype` or `null`), else `undefined`.
 * An array is never one, whatever its prototype (zod's isObject refuses any), nor a Proxy of
 * one. Symbol keys need no check here: a strict object reads its keys with `for…in`, which
 * skips them, so the schema's output has none either (a record is different: see
 * `fast-parse.ts`'s `plainRecord`).
 */
export function plainObject(value: unknown): PlainObject | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== OBJECT_PROTOTYPE && prototype !== null) return undefined;
  return value as PlainObject;
}

/**
 * Every enumerable key of `value` is one of `allowed`, and there are `present` of them (a
 * strict object's rule; `for…in`, as the schema reads them, inherited keys included). The
 * caller counts the members it read with `in`, so a member it read that is not enumerable
 * (which zod reads too, but a copy would not show) makes the counts differ: the schema decides.
 */
export function hasOnlyKeys(value: PlainObject, allowed: ReadonlySet<string>, present: number): boolean {
  let count = 0;
  for (const key in value) {
    if (!allowed.has(key)) return false;
    count++;
  }
  return count === present;
}
