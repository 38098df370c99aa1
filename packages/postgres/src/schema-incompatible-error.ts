import { LatchError } from "@latch/core";

const marker = Symbol.for("latch.error.schema_incompatible");

/**
 * `schema_incompatible`: the schema was migrated past the version this package needs by a
 * migration that older code cannot run against: one whose `compatibleFrom` (the oldest package
 * schema version it keeps working) is above this package's. Upgrade the package (for a rolling
 * deploy: finish rolling out the release that ran the migration). Not retryable.
 */
export class SchemaIncompatibleError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "schema_incompatible";
  readonly schema: string;
  /** The version found in the schema's ledger. */
  readonly found: number;
  /** The version this package needs (and was written for). */
  readonly required: number;
  /** The oldest package version the newer migrations keep working: above `required`. */
  readonly compatibleFrom: number;
  constructor({
    schema,
    found,
    required,
    compatibleFrom,
  }: { schema: string; found: number; required: number; compatibleFrom: number }) {
    super({
      code: "schema_incompatible",
      message: `Schema "${schema}" is at migration ${found}, which needs @latch/postgres for schema ${compatibleFrom} or newer; this one is for ${required}: upgrade the package`,
    });
    this.name = "SchemaIncompatibleError";
    this.schema = schema;
    this.found = found;
    this.required = required;
    this.compatibleFrom = compatibleFrom;
  }

  static override isInstance(error: unknown): error is SchemaIncompatibleError {
    return LatchError.hasMarker(error, marker);
  }
}

declare module "@latch/core/adapter" {
  interface LatchErrorClasses {
    schema_incompatible: SchemaIncompatibleError;
  }
}
