import { z } from "zod";
import {
  BillingSubjectSchema,
  CorrelationIdsSchema,
  EventIdSchema,
  isWellFormedText,
  WellFormedText,
} from "./identity.js";
import { MeterSetSchema } from "./meters.js";
import { ModelRefSchema, ProviderRefSchema } from "./model.js";
import { IsoTimestampSchema } from "./time.js";

const utf8 = new TextEncoder();
const byteLength = (s: string) => utf8.encode(s).length;

/** Free-form labels: key ≤ 64 bytes, value ≤ 256 bytes (UTF-8), at most 64 entries, no `sys.` prefix. */
export const AttributesSchema = z
  .record(z.string(), z.string({ error: "expected a string" }).check(WellFormedText))
  .superRefine((attrs, ctx) => {
    const keys = Object.keys(attrs);
    if (keys.length > 64) ctx.addIssue({ code: "custom", path: [], message: "at most 64 attributes" });
    for (const key of keys) {
      if (key.length === 0) ctx.addIssue({ code: "custom", path: [key], message: "key must not be empty" });
      // Named without the key: an ill-formed key is no label to print.
      if (!isWellFormedText(key)) {
        ctx.addIssue({ code: "custom", path: [], message: "a key contains U+0000 or an unpaired surrogate" });
      }
      if (byteLength(key) > 64)
        ctx.addIssue({ code: "custom", path: [key], message: "key exceeds 64 bytes" });
      if (key.startsWith("sys."))
        ctx.addIssue({ code: "custom", path: [key], message: "the sys. prefix is reserved" });
      const value = attrs[key];
      if (typeof value === "string" && byteLength(value) > 256) {
        ctx.addIssue({ code: "custom", path: [key], message: "value exceeds 256 bytes" });
      }
    }
  });
export type Attributes = z.output<typeof AttributesSchema>;

/** Where the meters came from. A correction names the event it corrects. */
export const UsageSourceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.enum(["provider_reported", "stream_accumulated", "estimated"]) }),
  z.strictObject({ kind: z.literal("corrected"), correctionOf: EventIdSchema }),
]);
export type UsageSource = z.output<typeof UsageSourceSchema>;

/** How the call ended. Failed calls are still recorded: providers bill some of them. */
export const UsageOutcomeSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.enum(["success", "timeout", "unknown"]) }),
  z.strictObject({ kind: z.literal("error"), code: z.string().min(1).max(128).check(WellFormedText) }),
]);
export type UsageOutcome = z.output<typeof UsageOutcomeSchema>;

/** When the call ran (ISO 8601 UTC). Prices and billing periods follow `completedAt`. */
export const UsageTimingSchema = z
  .strictObject({ startedAt: IsoTimestampSchema, completedAt: IsoTimestampSchema })
  .superRefine((t, ctx) => {
    if (Date.parse(t.completedAt) < Date.parse(t.startedAt)) {
      ctx.addIssue({ code: "custom", path: ["completedAt"], message: "must not be before startedAt" });
    }
  });
export type UsageTiming = z.output<typeof UsageTimingSchema>;

/** The raw record of what one model call consumed: stored first, rated after. */
export const UsageObservationSchema = z.strictObject({
  eventId: EventIdSchema,
  subject: BillingSubjectSchema,
  meters: MeterSetSchema,
  model: ModelRefSchema,
  provider: ProviderRefSchema.optional(),
  source: UsageSourceSchema,
  outcome: UsageOutcomeSchema,
  timing: UsageTimingSchema,
  correlation: CorrelationIdsSchema.optional(),
  attributes: AttributesSchema.optional(),
});
export type UsageObservation = z.output<typeof UsageObservationSchema>;
export type UsageObservationInput = z.input<typeof UsageObservationSchema>;
