import type { MeterKind } from "../schemas/meters.js";
import { compareMeters } from "../schemas/meters.js";
import { type UsageObservation, UsageObservationSchema } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";

/**
 * What validation learns about an observation, kept beside it so the rating hot path never
 * re-parses: non-zero meters in canonical order and the completion time in epoch ms.
 */
export interface ParsedFacts {
  readonly meters: readonly MeterKind[];
  readonly quantities: readonly number[];
  readonly completedAtMs: number;
}

const parsed = new WeakMap<object, ParsedFacts>();

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function factsOf(obs: UsageObservation): ParsedFacts {
  const meters = (Object.keys(obs.meters) as MeterKind[]).filter((m) => (obs.meters[m] as number) > 0);
  meters.sort(compareMeters);
  return {
    meters,
    quantities: meters.map((m) => obs.meters[m] as number),
    completedAtMs: Date.parse(obs.timing.completedAt),
  };
}

/**
 * Validates an observation once, at the boundary, and returns a frozen copy. Bad input
 * throws `LatchValidationError` naming each bad field (`meters.input_tokens: expected an
 * integer, not a fraction`). The rating engine recognises parsed observations and does not
 * validate them again.
 *
 * @example
 * const obs = parseObservation(JSON.parse(body));
 */
export function parseObservation(input: unknown): UsageObservation {
  if (typeof input === "object" && input !== null && parsed.has(input)) return input as UsageObservation;
  const obs = deepFreeze(parseWith(UsageObservationSchema, input, "UsageObservation"));
  parsed.set(obs, factsOf(obs));
  return obs;
}

/** True when `value` came out of {@link parseObservation} (and, being frozen, is unchanged since). */
export function isParsedObservation(value: unknown): value is UsageObservation {
  return typeof value === "object" && value !== null && parsed.has(value);
}

/** Facts about a parsed observation; parses (and validates) it first when needed. */
export function observationFacts(value: UsageObservation): { obs: UsageObservation; facts: ParsedFacts } {
  const facts = typeof value === "object" && value !== null ? parsed.get(value) : undefined;
  if (facts !== undefined) return { obs: value, facts };
  const obs = parseObservation(value);
  return { obs, facts: parsed.get(obs) as ParsedFacts };
}
