import {
  defineCommand,
  deprecatedFlag,
  flag,
  negatedFlag,
  type OptionValues,
  oneOf,
  text,
} from "../command.js";
import { PRICES_OPTIONS } from "../prices-flag.js";

export const RATE_OPTIONS = [
  ...PRICES_OPTIONS,
  text("-o, --out <file>", "rated records (written to a temp file, renamed at the end); - for stdout", {
    default: "-",
  }),
  oneOf("--format <format>", "jsonl or csv (default: from --out's extension, else jsonl)", ["jsonl", "csv"]),
  text(
    "--rejects <file>",
    "keep rejected lines as JSONL (line, code, field, reason, input); default: none, stderr lists the first ones",
  ),
  text("--tenant <id>", "billing subject (subject.tenantId) of raw OpenAI response lines, which name none"),
  text("--rated-at <time>", "ratedAt of every record (default: the start of the run)"),
  flag("--allow-rejects", "exit 0 when lines were rejected, instead of 3"),
  deprecatedFlag("--strict", "rejected lines already exit 3"),
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
  {"id":"chatcmpl-...","object":"chat.completion","created":...,"model":"...","usage":{...},...}
                                 a raw OpenAI Chat Completions or Responses body, with --tenant;
                                 event id <id>:0:openai, time from created / created_at
Rejected lines: listed on stderr (the first 10), kept in a file only with --rejects; exit 3 unless --allow-rejects.
`,
  action: async ([input], options, ctx) => {
    await (await import("./rate.js")).runRate(input, options, ctx);
  },
});
