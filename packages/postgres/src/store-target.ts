import type { Queryable } from "./queryable.js";

/** Where a store keeps its rows: its connection (pool, client or PGlite) and schema. @internal */
export interface StoreTarget {
  readonly db: Queryable;
  readonly schema: string;
}

const targets = new WeakMap<object, StoreTarget>();

/** Remembers where `store` keeps its rows, for {@link sameTarget}. @internal */
export function registerTarget(store: object, target: StoreTarget): void {
  targets.set(store, target);
}

/** Whether `other` is a store of this package writing through the same connection to the same schema. @internal */
export function sameTarget(other: unknown, target: StoreTarget): boolean {
  const found = typeof other === "object" && other !== null ? targets.get(other) : undefined;
  return found !== undefined && found.db === target.db && found.schema === target.schema;
}
