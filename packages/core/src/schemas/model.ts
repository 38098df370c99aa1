import { z } from "zod";
import { WellFormedText } from "./identity.js";

const Name = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);

/** The model a call is billed as. `billableModel` is the key price snapshots are looked up by. */
export const ModelRefSchema = z.strictObject({
  billableModel: Name,
  vendor: Name.optional(),
  region: Name.optional(),
  tier: Name.optional(),
});
export type ModelRef = z.output<typeof ModelRefSchema>;
export type ModelRefInput = z.input<typeof ModelRefSchema>;

/** The provider that served a call (e.g. `openai`, `bedrock`, `openrouter`). */
export const ProviderRefSchema = z.strictObject({ providerId: Name });
export type ProviderRef = z.output<typeof ProviderRefSchema>;
