import type { MeterKind } from "../schemas/meters.js";
import { compareMeters } from "../schemas/meters.js";
import { type UsageObservation, UsageObservationSchema } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import { fastParseObservation } from "./fast-parse.js";

/**
 * What validation learns about an observation, kept beside it so the rating hot path never
 * re-parses: non-zero meters in canonical order and the completion time in epoch ms.
 */
export interface ParsedFacts {
  /** The parsed observation these facts describe. */
  readonly observation: UsageObservation;
  readonly meters: readonly MeterKind[];
  readonly quantities: readonly number[];
  readonly completedAtMs: number;
  /** Values derived from the observation on demand, kept once derived (it is frozen, so they never go stale). */
  readonly memo: ParsedMemo;
}

/** See {@link ParsedFacts.memo}. */
export interface ParsedMemo {
  /** Its canonical JSON (see `contracts/hashing.ts`): hashed on append, and again inside its rated record. */
  canonicalJson: string | undefined;
  /** The last record the default engine built from it, frozen (see `rating/sealed-record.ts`). */
  sealedRecord: object | undefined;
}

/**
 * Facts ride on the parsed observation under a module-private symbol (non-enumerable, so
 * invisible to JSON and Object.keys): a property read is much cheaper on the hot path than
 * a WeakMap lookup. Only this module can set it, and only before freezing.
 */
const FACTS = Symbol("latch.observationFacts");
type WithFacts = { readonly [FACTS]?: ParsedFacts };

/**
 * Freezes a parsed observation all the way down. The schema's shape is one level deep: every
 * member is a string or a flat object of strings and numbers (subject, meters, model, …), so
 * freezing each member object and then the observation is a deep freeze, without a generic walk.
 */
function freezeObservation(obs: UsageObservation): UsageObservation {
  for (const key in obs) {
    const member = (obs as Record<string, unknown>)[key];
    if (typeof member === "object" && member !== null) Object.freeze(member);
  }
  return Object.freeze(obs);
}

function factsOf(value: unknown): ParsedFacts | undefined {
  return typeof value === "object" && value !== null ? (value as WithFacts)[FACTS] : undefined;
}

function computeFacts(obs: UsageObservation): ParsedFacts {
  const meters: MeterKind[] = [];
  for (const meter in obs.meters)
    if ((obs.meters[meter as MeterKind] as number) > 0) meters.push(meter as MeterKind);
  if (meters.length > 1) meters.sort(compareMeters);
  const quantities: number[] = [];
  for (const meter of meters) quantities.push(obs.meters[meter] as number);
  return Object.freeze({
    observation: obs,
    meters: Object.freeze(meters),
    quantities: Object.freeze(quantities),
    completedAtMs: Date.parse(obs.timing.completedAt),
    memo: { canonicalJson: undefined, sealedRecord: undefined },
  });
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
  const known = factsOf(input);
  if (known !== undefined) return known.observation;
  const obs = fastParseObservation(input) ?? parseWith(UsageObservationSchema, input, "UsageObservation");
  Object.defineProperty(obs, FACTS, { value: computeFacts(obs), enumerable: false });
  return freezeObservation(obs);
}

/** True when `value` came out of {@link parseObservation} (and, being frozen, is unchanged since). */
export function isParsedObservation(value: unknown): value is UsageObservation {
  const facts = factsOf(value);
  return facts !== undefined && facts.observation === value;
}

/** The memo of a parsed observation (see {@link ParsedFacts.memo}); undefined for any other value. */
export function parsedMemo(value: unknown): ParsedMemo | undefined {
  const facts = factsOf(value);
  return facts !== undefined && facts.observation === value ? facts.memo : undefined;
}

/** Facts about a parsed observation; parses (and validates) it first when needed. */
export function observationFacts(value: UsageObservation): ParsedFacts {
  return factsOf(value) ?? (factsOf(parseObservation(value)) as ParsedFacts);
}
