import {
  DefaultRatingEngine,
  type InMemoryPricingSource,
  LatchError,
  LatchValidationError,
  type MeterKind,
  type MeterSet,
  normalize,
  type PriceSnapshot,
  type ProviderUsageInput,
  parseObservation,
  type RatedUsageRecord,
  toObservation,
  UsageEventId,
  type UsageObservation,
} from "@latch/core";
import {
  type BaselineKey,
  compileSnapshot,
  modelMatchOf,
  PROMPT_METERS,
  type PriceResolution,
  type RatingContext,
  TOKEN_METERS,
} from "@latch/core/adapter";

/** Why a line was not rated: what the reject file holds for it. */
export interface Rejection {
  /** 1-based line number in the input. */
  line: number;
  /**
   * A Latch error code (`invalid_input`, `no_snapshot_in_effect`, `no_snapshot_for_tier`,
   * `ambiguous_model`, `no_price_for_meter`, …) or `invalid_json`.
   */
  code: string;
  /** The bad field's path, when one is to blame (`usage.prompt_tokens`, `observation.timing.completedAt`). */
  field?: string;
  reason: string;
}

export type LineResult =
  | { ok: true; record: RatedUsageRecord }
  | { ok: false; rejection: Omit<Rejection, "line"> };

const APIS = Object.keys(normalize) as Array<keyof typeof normalize>;

function isApi(value: unknown): value is keyof typeof normalize {
  return typeof value === "string" && (APIS as string[]).includes(value);
}

function validationRejection(error: LatchValidationError, prefix: string): Omit<Rejection, "line"> {
  const first = error.issues[0];
  const path = first === undefined ? prefix : [prefix, first.path].filter((p) => p !== "").join(".");
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
  const rejection: Omit<Rejection, "line"> = {
    code: "invalid_input",
    reason: `${path === "" ? "(root)" : path}: ${first?.message ?? "invalid"}${more}`,
  };
  if (path !== "") rejection.field = path;
  return rejection;
}

interface RawResponse {
  api: "openaiChat" | "openaiResponses";
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
}

/**
 * An OpenAI Chat Completions (`object: "chat.completion"`) or Responses (`object: "response"`)
 * body, as a gateway logs it whole; `undefined` for anything else. A body without the fields
 * an observation needs is rejected naming the field.
 */
function rawOpenAIResponse(json: Record<string, unknown>): RawResponse | undefined {
  if ("api" in json || "eventId" in json) return undefined;
  const api =
    json.object === "chat.completion"
      ? "openaiChat"
      : json.object === "response"
        ? "openaiResponses"
        : undefined;
  if (api === undefined) return undefined;
  const timeField = api === "openaiChat" ? "created" : "created_at";
  const missing = (field: string, what: string) =>
    new RejectionError({
      code: "invalid_input",
      field,
      reason: `${field}: expected ${what} (a raw OpenAI response)`,
    });
  if (typeof json.id !== "string" || json.id === "") throw missing("id", "the response id");
  if (typeof json.model !== "string" || json.model === "") throw missing("model", "the model id");
  const created = json[timeField];
  if (typeof created !== "number" || !Number.isSafeInteger(created) || created <= 0)
    throw missing(timeField, "Unix seconds");
  return { api, id: json.id, model: json.model, created };
}

function sum(meters: MeterSet, which: readonly MeterKind[]): number {
  let total = 0;
  for (const m of which) total += meters[m] ?? 0;
  return total;
}

/**
 * Rates log lines one at a time, offline: each line is a provider payload
 * (`{ "api": "openaiChat", "usage": {…}, "observation": {…without meters} }`, like
 * `latch.record()` takes), a whole `UsageObservation`, or a raw OpenAI Chat Completions /
 * Responses body (with the `tenant` option: a body names no billing subject). Pure apart from the period-tier
 * running totals, which accumulate in input order (per tenant, priced model and calendar month, as
 * the facade's usage counter does).
 */
export class LineRater {
  readonly #pricing: InMemoryPricingSource;
  readonly #engine = new DefaultRatingEngine();
  readonly #ratedAt: string;
  readonly #periodKeys = new WeakMap<PriceSnapshot, BaselineKey[]>();
  readonly #periodTotals = new Map<string, number>();

  readonly #tenant: string | undefined;

  /**
   * @param tenant The billing subject of raw provider responses (`--tenant`): a response body
   *   names no tenant, so without it such a line is rejected saying so.
   */
  constructor(
    pricing: InMemoryPricingSource,
    ratedAt: string,
    options: { tenant?: string | undefined } = {},
  ) {
    this.#pricing = pricing;
    this.#ratedAt = ratedAt;
    this.#tenant = options.tenant;
  }

  rate(text: string): LineResult {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return {
        ok: false,
        rejection: { code: "invalid_json", reason: `not JSON: ${(error as Error).message}` },
      };
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return {
        ok: false,
        rejection: { code: "invalid_input", reason: "(root): expected a JSON object per line" },
      };
    }
    let observation: UsageObservation;
    try {
      observation = this.#observationOf(json as Record<string, unknown>);
    } catch (error) {
      if (error instanceof RejectionError) return { ok: false, rejection: error.rejection };
      throw error;
    }
    const resolution = this.#pricing.resolvePriceSync({
      model: observation.model,
      at: observation.timing.completedAt,
      providerId: observation.provider?.providerId,
    });
    if (resolution.status === "unpriced")
      return { ok: false, rejection: unpricedRejection(observation, resolution) };
    const snapshot = resolution.snapshot;
    try {
      const context: RatingContext = { ratedAt: this.#ratedAt };
      const modelMatch = modelMatchOf(resolution);
      if (modelMatch !== undefined) context.modelMatch = modelMatch;
      const baseline = this.#periodBaseline(observation, snapshot);
      if (baseline !== undefined) context.periodBaseline = baseline;
      return { ok: true, record: this.#engine.rate(observation, snapshot, context) };
    } catch (error) {
      if (error instanceof LatchValidationError)
        return { ok: false, rejection: validationRejection(error, "") };
      if (LatchError.isInstance(error)) {
        return { ok: false, rejection: { code: error.code, reason: error.message } };
      }
      throw error;
    }
  }

  #observationOf(json: Record<string, unknown>): UsageObservation {
    const raw = rawOpenAIResponse(json);
    if (raw !== undefined) return this.#observationOf(this.#wrapRaw(json, raw));
    if (!("api" in json) && !("eventId" in json)) {
      throw new RejectionError({
        code: "invalid_input",
        reason: `(root): not a line latch rate reads; missing field "api" (a provider line {api, usage|response, observation}) or "eventId" (a UsageObservation); a raw OpenAI chat.completion or response body is read as is with --tenant`,
      });
    }
    if (!("api" in json)) {
      try {
        return parseObservation(json);
      } catch (error) {
        if (error instanceof LatchValidationError) throw new RejectionError(validationRejection(error, ""));
        throw error;
      }
    }
    const api = json.api;
    if (!isApi(api)) {
      throw new RejectionError({
        code: "invalid_input",
        field: "api",
        reason: `api: expected one of ${APIS.join(", ")}`,
      });
    }
    const rest = json.observation;
    if (typeof rest !== "object" || rest === null || Array.isArray(rest)) {
      throw new RejectionError({
        code: "invalid_input",
        field: "observation",
        reason: "observation: expected an object (the observation without meters)",
      });
    }
    // Exactly what record() makes of the line: the tier a usage object reports, caller meters
    // added, usage billed at another model's rates refused (never silently dropped).
    const input: Record<string, unknown> = { api, observation: rest };
    if ("usage" in json) input.usage = json.usage;
    if ("response" in json) input.response = json.response;
    try {
      return toObservation(input as unknown as ProviderUsageInput);
    } catch (error) {
      if (!(error instanceof LatchValidationError)) throw error;
      // Payload paths come as usage.… / response.… / observation.…; the observation's own fields without a prefix.
      const issues = error.issues.map((i) =>
        /^(usage|response|observation)(\.|$)/.test(i.path)
          ? i
          : { ...i, path: i.path === "" ? "observation" : `observation.${i.path}` },
      );
      throw new RejectionError(
        validationRejection(new LatchValidationError({ subject: error.subject, issues }), ""),
      );
    }
  }

  /**
   * A raw OpenAI response body as the provider line `record()` takes: event id
   * `<response id>:0:openai`, model and time (`created` / `created_at`) from the body, subject
   * `--tenant`.
   */
  #wrapRaw(json: Record<string, unknown>, raw: RawResponse): Record<string, unknown> {
    if (this.#tenant === undefined) {
      throw new RejectionError({
        code: "invalid_input",
        field: "subject.tenantId",
        reason: `subject.tenantId: a raw OpenAI response (object "${json.object}") names no tenant: pass --tenant <id>, or log {api, response, observation} lines`,
      });
    }
    const at = new Date(raw.created * 1_000).toISOString();
    let eventId: string;
    try {
      eventId = UsageEventId.fromAttempt(raw.id, 0, "openai");
    } catch {
      throw new RejectionError({
        code: "invalid_input",
        field: "id",
        reason: "id: not usable as an event id",
      });
    }
    return {
      api: raw.api,
      response: json,
      observation: {
        eventId,
        subject: { tenantId: this.#tenant },
        model: { billableModel: raw.model },
        provider: { providerId: "openai" },
        source: { kind: "provider_reported" },
        outcome: { kind: "success" },
        timing: { startedAt: at, completedAt: at },
        correlation: { requestId: raw.id },
      },
    };
  }

  /** Usage before this event in the period, per baseline key, for the snapshot's period tiers. */
  #periodBaseline(obs: UsageObservation, snapshot: PriceSnapshot): RatingContext["periodBaseline"] {
    let keys = this.#periodKeys.get(snapshot);
    if (keys === undefined) {
      const set = new Set<BaselineKey>();
      for (const tier of compileSnapshot(snapshot).tiers) {
        if (tier.scope !== "period") continue;
        set.add(tier.baselineKey);
        for (const m of tier.meters) set.add(m);
      }
      keys = [...set];
      this.#periodKeys.set(snapshot, keys);
    }
    if (keys.length === 0) return undefined;
    const baseline: Partial<Record<BaselineKey, number>> = {};
    const period = obs.timing.completedAt.slice(0, 7);
    for (const key of keys) {
      const quantity =
        key === "prompt_tokens"
          ? sum(obs.meters, PROMPT_METERS)
          : key === "total_tokens"
            ? sum(obs.meters, TOKEN_METERS)
            : (obs.meters[key] ?? 0);
      // The priced model, as the facade keys it: ids matched to one snapshot share one baseline.
      const counterKey = `${obs.subject.tenantId}|${snapshot.model.billableModel}|${key}|${period}`;
      const before = this.#periodTotals.get(counterKey) ?? 0;
      this.#periodTotals.set(counterKey, before + quantity);
      baseline[key] = before;
    }
    return baseline;
  }
}

/** Why the pricing source found no price for a line: the reason as the error code `require()` would throw. */
function unpricedRejection(
  obs: UsageObservation,
  resolution: Extract<PriceResolution, { status: "unpriced" }>,
): Omit<Rejection, "line"> {
  const model = obs.model.billableModel;
  switch (resolution.reason) {
    case "no_snapshot":
      return {
        code: "no_snapshot_in_effect",
        field: "model.billableModel",
        reason: `no price snapshot for model ${model} at ${obs.timing.completedAt}`,
      };
    case "no_snapshot_for_tier":
      return {
        code: "no_snapshot_for_tier",
        field: "model.tier",
        reason: `no price snapshot for model ${model} in service tier ${resolution.tier} at ${obs.timing.completedAt}`,
      };
    case "ambiguous_model":
      return {
        code: "ambiguous_model",
        field: "model.billableModel",
        reason: `model ${model} matches ${resolution.candidates.join(", ")} (${resolution.rule})`,
      };
  }
}

class RejectionError extends Error {
  readonly rejection: Omit<Rejection, "line">;
  constructor(rejection: Omit<Rejection, "line">) {
    super(rejection.reason);
    this.rejection = rejection;
  }
}
