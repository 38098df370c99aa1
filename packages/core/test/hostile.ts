/**
 * Hostile objects the pre-check tests share: values whose members answer differently on each
 * read, as an accessor or a Proxy may, to prove that a pre-check reads each member once and
 * returns exactly the value it checked.
 */

/** How many times each {@link flipping} value's accessor was read (kept apart: nothing on the value). */
const READ_COUNTS = new WeakMap<object, () => number>();

/**
 * A copy of `value` whose member `key` is an enumerable accessor answering `first` on its first
 * `reads` reads, then `then` (see {@link readsOf}).
 */
export function flipping(
  value: Record<string, unknown>,
  key: string,
  first: unknown,
  then: unknown,
  reads = 1,
): Record<string, unknown> {
  let n = 0;
  const out: Record<string, unknown> = { ...value };
  delete out[key];
  Object.defineProperty(out, key, {
    enumerable: true,
    configurable: true,
    get: () => (n++ < reads ? first : then),
  });
  READ_COUNTS.set(out, () => n);
  return out;
}

/** How many times the accessor of a {@link flipping} value has been read so far. */
export function readsOf(value: object): number {
  const count = READ_COUNTS.get(value);
  if (count === undefined) throw new Error("readsOf: not a value made by flipping()");
  return count();
}
