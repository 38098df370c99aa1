/**
 * How the hot-path pre-checks (`fastParseObservation`, `fastParseProviderUsage`,
 * `fastParseReserve`, `parseReserveRequest`, the normalizers' readers) read an object as zod
 * would, shared so that each of them sends the same unusual objects to its schema: what counts
 * as a plain object, a strict object's key rule, a member read once, and a record whose keys
 * are all the schema reads.
 *
 * @packageDocumentation
 */

/** An object the pre-checks read members of. */
export type Plain = Record<string, unknown>;

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * A plain object. Symbol keys need no check here: a strict object reads its keys with
 * `for…in`, which skips them, so the schema's output has none either (a record is different:
 * see {@link plainRecord}).
 */
export function plain(value: unknown): Plain | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  let prototype: unknown;
  try {
    // An array is never one, whatever its prototype (zod's isObject), nor a Proxy of one.
    if (Array.isArray(value)) return undefined;
    prototype = Object.getPrototypeOf(value);
  } catch {
    // A revoked Proxy, or one whose getPrototypeOf trap throws: the schema decides (a strict
    // object's parse never asks for the prototype), as it did before the pre-checks.
    return undefined;
  }
  if (prototype !== OBJECT_PROTOTYPE && prototype !== null) return undefined;
  return value as Plain;
}

/**
 * Every enumerable key of `value` is one of `allowed`, and there are `present` of them (a
 * strict object's rule; `for…in`, as the schema reads them, inherited keys included). A caller
 * counts the members it read with `in`, so a member it read that is not enumerable (which zod
 * reads too, but a copy would not show) makes the counts differ: the schema decides.
 */
export function onlyKeys(value: Plain, allowed: ReadonlySet<string>, present: number): boolean {
  let count = 0;
  for (const key in value) {
    if (!allowed.has(key)) return false;
    count++;
  }
  return count === present;
}

/** A member that is not there (see {@link memberOf}). */
export const ABSENT: unique symbol = Symbol("absent");

/**
 * The member `key` of `value`, read exactly once (an accessor or a Proxy may answer differently
 * each time, and what is copied must be exactly what was checked); {@link ABSENT} when `value`
 * has no such member (own or inherited, as the schema reads it: `key in value`). A member
 * present as `undefined` is `undefined`: present, as the schema's output keeps it. Read, then
 * asked, in zod's order and whatever was read: a Proxy whose `has` denies a member its `get`
 * gives has it absent for zod (an optional member left out, a required one refused), so here too.
 */
export function memberOf(value: Plain, key: string): unknown {
  const got = value[key];
  return key in value ? got : ABSENT;
}

/**
 * `input` as a record (`z.record`: meters, attributes, a provider payload's observation) whose
 * own enumerable string keys (`Object.keys`, in that order) are all the schema reads, else
 * `undefined` (the schema decides): a plain object with no symbol key (a record reads every own
 * key, and its string key schema refuses an enumerable symbol), no own `__proto__`, enumerable
 * or not (a record drops it unread; `refuseProtoKeys` refuses it in an observation), and a plain
 * object's `constructor` (zod's isPlainObject refuses another; an own, non-enumerable one is
 * invisible to Object.keys but not to it).
 */
export function plainRecord(input: unknown): Plain | undefined {
  const value = plain(input);
  if (
    value === undefined ||
    Object.getOwnPropertySymbols(value).length > 0 ||
    Object.hasOwn(value, "__proto__")
  )
    return undefined;
  const maker = value.constructor;
  return maker === Object || maker === undefined ? value : undefined;
}
