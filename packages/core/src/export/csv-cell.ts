/**
 * CSV cells, neutralised against formula injection (OWASP, "CSV Injection"): the one rule every
 * CSV Latch writes follows (billing-export objects, report CSVs, the HTTP export, the CLI).
 *
 * - A **text** cell that begins with `=`, `+`, `-`, `@`, TAB (0x09) or CR (0x0D) is written
 *   as a single quote `'` followed by the value, and quoted: `=1+1` → `"'=1+1"`. A spreadsheet
 *   shows it as text; a CSV reader gets `'=1+1` back. A text cell that begins with `'` is
 *   prefixed the same way (`'x` → `"''x"`), so the prefix can always be undone exactly: strip
 *   one leading `'` from a cell that starts with `'` and one of `= + - @ TAB CR '` (see
 *   {@link csvCellValue}).
 * - Any other cell is quoted when it contains `,`, `"`, CR or LF (RFC 4180), inner `"` doubled.
 * - A **number** cell (a column Latch produces as a number: meters, versions, sequence
 *   numbers, amounts such as `cost` and `cost_delta`) is written as it is when it is a plain
 *   decimal (`-?digits[.digits]`), so a negative amount stays `-0.5` and a spreadsheet reads
 *   it as the number −0.5, which is not a formula. A number cell that is not a plain decimal
 *   is treated as text.
 */

/** How a cell is written: `text` (neutralised) or `number` (a plain decimal kept as it is). */
export type CsvCellKind = "text" | "number";

/**
 * The characters that make a spreadsheet read a cell as a formula when they come first (OWASP),
 * and `'` itself, so that a prefixed cell is never ambiguous.
 */
const PREFIXED_START = /^[=+\-@\t\r']/;
const NEEDS_QUOTES = /[",\r\n]/;
const PLAIN_DECIMAL = /^-?[0-9]+(?:\.[0-9]+)?$/;

/**
 * One CSV cell, neutralised and quoted as the module describes.
 *
 * @example
 * csvCell("=HYPERLINK(\"x\")"); // "\"'=HYPERLINK(\"\"x\"\")\""
 * csvCell("-0.5", "number");    // "-0.5"
 * csvCell("-0.5");              // "\"'-0.5\""
 * csvCell("a,b");               // "\"a,b\""
 */
export function csvCell(value: string, kind: CsvCellKind = "text"): string {
  if (kind === "number" && PLAIN_DECIMAL.test(value)) return value;
  if (PREFIXED_START.test(value)) return `"'${value.replaceAll('"', '""')}"`;
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/**
 * The value a text cell written by {@link csvCell} stood for, once a CSV reader has unquoted
 * it: one leading `'` is removed when the next character is one of `= + - @ TAB CR '`. For
 * every string `v`, `csvCellValue(unquote(csvCell(v))) === v`.
 *
 * @example
 * csvCellValue("'=1+1"); // "=1+1"
 * csvCellValue("''x");   // "'x"
 * csvCellValue("it's");  // "it's"
 */
export function csvCellValue(text: string): string {
  return text.startsWith("'") && PREFIXED_START.test(text.slice(1)) ? text.slice(1) : text;
}
