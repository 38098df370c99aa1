export { csvRow, linesToCsv, SUMMARY_GROUP_COLUMNS, summaryToCsv } from "./csv.js";
export { selectLines } from "./lines.js";
export {
  FILTER_KEYS,
  type FilterKey,
  type LinesPage,
  type LinesQuery,
  LinesQuerySchema,
  SUMMARY_GROUP_KEYS,
  type SummaryGroupKey,
  type SummaryQuery,
  SummaryQuerySchema,
  type SummaryRow,
} from "./query.js";
export { summarize } from "./summarize.js";
