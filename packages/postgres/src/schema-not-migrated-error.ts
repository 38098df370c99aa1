import { LatchError } from "@latch/core";

const marker = Symbol.for("latch.error.schema_not_migrated");

/**
 * `schema_not_migrated`: the schema is behind the version this package needs. Stores never
 * migrate on their own: call `migrate(db, { schema })` at deploy time, or apply the shipped
 * `.sql` files with your own migration tool. Not retryable: a deployment error, not an outage.
 *
 * @example
 * try { await store.append(obs) } catch (e) {
 *   if (SchemaNotMigratedError.isInstance(e)) console.error(e.schema, e.found, e.required);
 * }
 */
export class SchemaNotMigratedError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "schema_not_migrated";
  readonly schema: string;
  /** The version found in the schema's ledger (0 when the schema or ledger does not exist). */
  readonly found: number;
  readonly required: number;
  constructor({ schema, found, required }: { schema: string; found: number; required: number }) {
    super({
      code: "schema_not_migrated",
      message: `Schema "${schema}" is at migration ${found}; @latch/postgres needs ${required}: run migrate(db, { schema: "${schema}" })`,
    });
    this.name = "SchemaNotMigratedError";
    this.schema = schema;
    this.found = found;
    this.required = required;
  }

  static override isInstance(error: unknown): error is SchemaNotMigratedError {
    return LatchError.hasMarker(error, marker);
  }
}

declare module "@latch/core/adapter" {
  interface LatchErrorClasses {
    schema_not_migrated: SchemaNotMigratedError;
  }
}
