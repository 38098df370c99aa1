import { z } from "zod";
import type { ObservationStore } from "../contracts/observation-store.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { CreditLedger } from "../credits/contract.js";
import { CreditAmountSchema, CreditIdSchema } from "../credits/schemas.js";
import { LatchValidationError } from "../errors/index.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import { parseWith } from "../schemas/parse.js";
import type { IngestLog } from "./ingest.js";
import type { LatchConfig, LatchCreditsConfig } from "./types.js";

/** The shape `createLatch` checks; the stores' methods are their own contracts' business. */
export const ConfigSchema = z.looseObject({
  observations: z.custom<ObservationStore>(
    (v) => typeof v === "object" && v !== null,
    "expected an ObservationStore",
  ),
  rated: z.custom<RatedRecordStore>(
    (v) => typeof v === "object" && v !== null,
    "expected a RatedRecordStore",
  ),
  pricing: z.custom<PricingSource>(
    (v) => typeof v === "object" && v !== null && typeof (v as PricingSource).resolve === "function",
    "expected a PricingSource with resolve()",
  ),
  ingest: z
    .custom<IngestLog>(
      (v) => typeof v === "object" && v !== null && typeof (v as IngestLog).publish === "function",
      "expected an IngestLog with publish()",
    )
    .optional(),
  spoolDir: z.string().min(1).optional(),
  spoolPath: z.string().min(1).optional(),
  holdTtlMs: z.number().int().positive().max(2_147_483_647).optional(),
  credits: z
    .strictObject({
      ledger: z.custom<CreditLedger>(
        (v) =>
          typeof v === "object" &&
          v !== null &&
          typeof (v as CreditLedger).recordUsage === "function" &&
          typeof (v as CreditLedger).reserve === "function",
        "expected a CreditLedger",
      ),
      featureId: CreditIdSchema.optional(),
      route: z
        .custom<NonNullable<LatchCreditsConfig["route"]>>(
          (v) => typeof v === "function",
          "expected a function",
        )
        .optional(),
      enforce: z.boolean({ error: "expected a boolean" }).optional(),
    })
    .optional(),
});

export const CreditReserveRequestSchema = z.strictObject({
  account: CreditIdSchema,
  amount: z.union(
    [z.number().int().positive().max(Number.MAX_SAFE_INTEGER).transform(String), CreditAmountSchema],
    { error: "expected a decimal string > 0 such as 4000 or 2.5, or a positive safe integer" },
  ),
  featureId: CreditIdSchema.optional(),
  holdId: z.string().min(1).max(256).optional(),
  ttlMs: z.number().int().positive().max(2_147_483_647).optional(),
});

export const ReserveSchema = z.strictObject({
  account: z.string().min(1).max(256),
  amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  holdId: z.string().min(1).max(256).optional(),
  ttlMs: z.number().int().positive().max(2_147_483_647).optional(),
});

/**
 * Checks a {@link LatchConfig} (`invalid_input` naming the bad field), including what no single
 * field says: credits need a feature or a route, and `reserve()` holds quota or credits, not both.
 */
export function parseLatchConfig(config: LatchConfig): void {
  parseWith(ConfigSchema, config, "LatchConfig", "config");
  const credits = config.credits;
  if (credits === undefined) return;
  if (credits.featureId === undefined && credits.route === undefined)
    throw LatchValidationError.at("LatchConfig", "credits.featureId", "give a featureId or a route");
  if (credits.enforce === true && config.quota !== undefined)
    throw LatchValidationError.at(
      "LatchConfig",
      "credits.enforce",
      "reserve() is backed by quota or by credits, not both: drop quota or enforce",
    );
}
