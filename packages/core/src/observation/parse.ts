import { LatchValidationError } from "../errors/index.js";
import type { MeterKind } from "../schemas/meters.js";
import { compareMeters } from "../schemas/meters.js";
import { type UsageObservation, UsageObservationSchema } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import { isoTimestampMs } from "../schemas/time.js";
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
}

/**
 * The facts, plus values derived from the observation on demand and kept once derived (it is
 * frozen, so they never go stale): its canonical JSON and the last record `rateSealed` sealed
 * for it. The memo lives in private fields, out of any caller's reach (a forged seal, a
 * poisoned idempotency hash).
 */
class Facts implements ParsedFacts {
  #canonicalJson: string | undefined = undefined;
  #sealedRecord: object | undefined = undefined;

  constructor(
    readonly observation: UsageObservation,
    readonly meters: readonly MeterKind[],
    readonly quantities: readonly number[],
    readonly completedAtMs: number,
  ) {}

  static canonicalJson(facts: Facts, serialise: (obs: UsageObservation) => string): string {
    if (facts.#canonicalJson === undefined) facts.#canonicalJson = serialise(facts.observation);
    return facts.#canonicalJson;
  }

  static sealedRecord(facts: Facts): object | undefined {
    return facts.#sealedRecord;
  }

  static seal(facts: Facts, record: object): void {
    facts.#sealedRecord = record;
  }
}

/** Returns the object it is given: what lets {@link Stamped} add its private field to it. */
class ReturnsTarget {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the point (a base class's return override)
    return target;
  }
}

/**
 * Facts ride on the parsed observation itself as a private field, added by a constructor whose
 * base returns the observation (a class's "return override"): invisible to every reflection
 * (keys, symbols, JSON, spread, structuredClone, deep equality), never copied nor inherited
 * (a copy, an heir or a Proxy of a parsed observation has none), and only this module can add
 * or read it. Reading it is a property load, much cheaper on the hot path than a WeakMap lookup;
 * adding it costs a fraction of `Object.defineProperty` (which a symbol property needed to stay
 * non-enumerable). It is added once, before the observation is frozen.
 */
class Stamped extends ReturnsTarget {
  readonly #facts: Facts;

  private constructor(target: UsageObservation, facts: Facts) {
    super(target);
    this.#facts = facts;
  }

  static stamp(target: UsageObservation, facts: Facts): void {
    new Stamped(target, facts);
  }

  static factsOf(value: object): Facts | undefined {
    return #facts in value ? value.#facts : undefined;
  }
}

/**
 * Freezes every member of a parsed observation. The schema's shape is one level deep: every
 * member is a string or a flat object of strings and numbers (subject, meters, model, …), so
 * freezing each member object and then the observation is a deep freeze, without a generic walk.
 */
function freezeMembers(obs: UsageObservation): UsageObservation {
  for (const key in obs) {
    const member = (obs as Record<string, unknown>)[key];
    if (typeof member === "object" && member !== null) Object.freeze(member);
  }
  return obs;
}

/** The facts of `value` when it is itself a parsed observation (not a copy, a Proxy or an heir of one). */
function ownFacts(value: unknown): Facts | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return Stamped.factsOf(value);
}

function computeFacts(obs: UsageObservation): Facts {
  const meters: MeterKind[] = [];
  const quantities: number[] = [];
  const set = obs.meters;
  for (const key in set) {
    const meter = key as MeterKind;
    const quantity = set[meter] as number;
    if (!(quantity > 0)) continue;
    // Insertion into canonical order: a call has a handful of meters, and they mostly come in order.
    let at = meters.length;
    meters.push(meter);
    quantities.push(quantity);
    while (at > 0 && compareMeters(meters[at - 1] as MeterKind, meter) > 0) {
      meters[at] = meters[at - 1] as MeterKind;
      quantities[at] = quantities[at - 1] as number;
      at--;
    }
    meters[at] = meter;
    quantities[at] = quantity;
  }
  const facts = new Facts(
    obs,
    Object.freeze(meters),
    Object.freeze(quantities),
    isoTimestampMs(obs.timing.completedAt),
  );
  Object.freeze(facts); // its public fields; the memo's private fields stay writable
  return facts;
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
  const known = ownFacts(input); // an heir or a Proxy of a parsed observation is parsed itself
  if (known !== undefined) return known.observation;
  // The pre-check's copy comes with its members frozen; the schema's is frozen member by member.
  const obs =
    fastParseObservation(input) ??
    freezeMembers(parseWith(UsageObservationSchema, refuseProtoKeys(input), "UsageObservation"));
  Stamped.stamp(obs, computeFacts(obs));
  return Object.freeze(obs);
}

/**
 * `input`, unless its `meters` or `attributes` has an own key `__proto__` (as `JSON.parse`
 * makes one): zod's records drop that key unread, so it would vanish without an error naming
 * it. Refused here as any other unknown meter or bad key is.
 */
function refuseProtoKeys(input: unknown): unknown {
  if (typeof input !== "object" || input === null) return input;
  const { meters, attributes } = input as { meters?: unknown; attributes?: unknown };
  if (typeof meters === "object" && meters !== null && Object.hasOwn(meters, "__proto__")) {
    throw LatchValidationError.at(
      "UsageObservation",
      "meters.__proto__",
      "unknown meter: expected a built-in meter or custom:<name>",
    );
  }
  if (typeof attributes === "object" && attributes !== null && Object.hasOwn(attributes, "__proto__")) {
    throw LatchValidationError.at(
      "UsageObservation",
      "attributes.__proto__",
      "the key __proto__ is reserved",
    );
  }
  return input;
}

/**
 * The facts of `value` when it came out of {@link parseObservation} itself (frozen, so
 * unchanged since: every member is valid, its completion time is `completedAtMs`), else
 * `undefined`: for hot paths that skip re-validating what was parsed, and validate the rest.
 */
export function parsedFacts(value: unknown): ParsedFacts | undefined {
  return ownFacts(value);
}

/** True when `value` came out of {@link parseObservation} (and, being frozen, is unchanged since). */
export function isParsedObservation(value: unknown): value is UsageObservation {
  return ownFacts(value) !== undefined;
}

/**
 * The canonical JSON of `value`, computed by `serialise` once per parsed observation and kept
 * (see `contracts/hashing.ts`); `undefined` for any other value.
 */
export function parsedCanonicalJson(
  value: unknown,
  serialise: (obs: UsageObservation) => string,
): string | undefined {
  const facts = ownFacts(value);
  return facts === undefined ? undefined : Facts.canonicalJson(facts, serialise);
}

/** The last record sealed for the parsed observation `value` (see `rating/sealed-record.ts`). */
export function sealedRecordOf(value: unknown): object | undefined {
  const facts = ownFacts(value);
  return facts === undefined ? undefined : Facts.sealedRecord(facts);
}

/** Remembers `record` as the one sealed for the parsed observation `value`; false for any other value. */
export function rememberSealedRecord(value: unknown, record: object): boolean {
  const facts = ownFacts(value);
  if (facts === undefined) return false;
  Facts.seal(facts, record);
  return true;
}

/** Facts about a parsed observation; parses (and validates) it first when needed. */
export function observationFacts(value: UsageObservation): ParsedFacts {
  return ownFacts(value) ?? (ownFacts(parseObservation(value)) as Facts);
}
