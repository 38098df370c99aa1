import { defineCommand, flag, negatedFlag, type OptionValues, oneOf, text } from "../command.js";
import { DEFAULT_PRICE_FILE } from "../defaults.js";

export const RATE_OPTIONS = [
  text("--prices <file>", "price sheet: a Latch price file or a LiteLLM cost map", {
    env: "LATCH_PRICES_FILE",
    default: DEFAULT_PRICE_FILE,
  }),
  text("-o, --out <file>", "rated records (written to a temp file, renamed at the end); - for stdout", {
    default: "-",
  }),
  oneOf("--format <format>", "jsonl or csv (default: from --out's extension, else jsonl)", ["jsonl", "csv"]),
  text(
    "--rejects <file>",
    "rejected lines as JSONL (line, code, field, reason, input); default <out>.rejects.jsonl",
  ),
  text("--rated-at <time>", "ratedAt of every record (default: the start of the run)"),
  flag("--strict", "exit 1 when any line was rejected (outputs are still written)"),
  negatedFlag("--no-progress", "no progress on stderr"),
  flag("--json", "print the run's summary as JSON on stdout (needs --out FILE)"),
] as const;
export type RateOptions = OptionValues<typeof RATE_OPTIONS>;

/** `latch rate <input>`. */
export const rateCommand = defineCommand({
  name: "rate",
  description: "rate a usage log offline, line by line (bounded memory), into JSONL or CSV",
  arguments: [
    {
      name: "<input>",
      description: "JSONL usage log, or - for stdin: each line {api, usage, observation} or an observation",
    },
  ],
  options: RATE_OPTIONS,
  helpAfter: `
Line formats:
  {"api":"openaiChat","usage":{...},"observation":{...without meters}}   api: openaiChat, openaiResponses, anthropic, gemini, openrouter
  {"eventId":"...","subject":{...},"meters":{...},"model":{...},...}       a UsageObservation
`,
  action: async ([input], options, ctx) => {
    await (await import("./rate.js")).runRate(input, options, ctx);
  },
});
