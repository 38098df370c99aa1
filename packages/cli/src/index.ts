/**
 * @latch/cli: the `latch` command. The binary is `dist/bin.js`; this entry exposes the same
 * program for embedding (`main(args, ctx)` resolves to the exit code).
 */
export type { CliContext } from "./context.js";
export { EXIT } from "./exit-codes.js";
export { PRICE_FILE_SCHEMA } from "./price-file.js";
export { buildProgram, main } from "./program.js";
