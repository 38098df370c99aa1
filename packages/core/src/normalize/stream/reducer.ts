/**
 * What every per-API stream reducer does. Internal: the public surface is
 * `createStreamAccumulator` (index.ts).
 */

/** A JSON object as the provider sent it. */
export type JsonObject = Record<string, unknown>;

/** The usage and response envelope a stream adds up to (see `StreamUsage` in index.ts). */
export interface ReducedStream {
  readonly usage: Readonly<JsonObject> | undefined;
  readonly response: Readonly<JsonObject>;
}

/** Folds one API's stream events, in order, into the final usage and envelope. */
export interface StreamReducer {
  /** One event payload (the parsed `data` of one SSE event), already known to be an object. */
  add(event: JsonObject): void;
  /** The usage and envelope so far; a fresh object on every call. */
  result(): ReducedStream;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Copies `keys` of `from` onto `to` where `from` has a non-null value (later events win). */
export function takeFields(to: JsonObject, from: JsonObject, keys: readonly string[]): void {
  for (const key of keys) {
    const value = from[key];
    if (value !== undefined && value !== null) to[key] = value;
  }
}
