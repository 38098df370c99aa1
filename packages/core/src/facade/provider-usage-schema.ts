import { z } from "zod";
import { normalize } from "../normalize/index.js";

/** Which normalizer turns a provider payload into meters (a key of `normalize`). */
export type UsageApi = keyof typeof normalize;

/** Every {@link UsageApi}, in `normalize`'s order (the schema's enum, and its message). */
export const USAGE_APIS = Object.keys(normalize) as [UsageApi, ...UsageApi[]];

/**
 * `record({ api, usage | response, observation })` at the boundary: the api, exactly one of the
 * payload forms (each read later by its normalizer, which checks it), and the observation around
 * it as a record (copied; its members are checked by `parseObservation` once merged with the
 * normalized meters). The single source of what is accepted and of every message; the hot path's
 * pre-check (`fastParseProviderUsage`) only takes a shortcut for what it plainly accepts.
 */
export const ProviderUsageSchema = z
  .strictObject({
    api: z.enum(USAGE_APIS, { error: `expected one of ${USAGE_APIS.join(", ")}` }),
    usage: z.unknown().optional(),
    response: z.unknown().optional(),
    observation: z.record(z.string(), z.unknown(), { error: "expected an object" }),
  })
  .superRefine((p, ctx) => {
    if ((p.usage === undefined) === (p.response === undefined)) {
      ctx.addIssue({ code: "custom", path: ["usage"], message: "give exactly one of usage or response" });
    }
  });

/** A provider payload as {@link ProviderUsageSchema} gives it. */
export type ParsedProviderUsage = z.output<typeof ProviderUsageSchema>;
