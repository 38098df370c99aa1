import { defineCommand, flag, type OptionValues, text } from "../command.js";

export const DOCTOR_OPTIONS = [
  text("--consumer <name>", "the change-log consumer whose export status is checked", {
    default: "latch-cli",
  }),
  flag("--json", "print the checks as JSON"),
] as const;
export type DoctorOptions = OptionValues<typeof DOCTOR_OPTIONS>;

/** `latch doctor`. */
export const doctorCommand = defineCommand({
  name: "doctor",
  description:
    "check the configured backends (LATCH_* variables or LATCH_CONFIG): connectivity, migrations, Redis settings, export status; says what to fix",
  options: DOCTOR_OPTIONS,
  helpAfter: `
Reads the same variables as @latch/config's loadLatchConfig(): LATCH_STORE, LATCH_DATABASE_URL
(or DATABASE_URL), LATCH_SCHEMA, LATCH_REDIS_URL, LATCH_S3_BUCKET, LATCH_NATS_URL, … (or the
JSON file LATCH_CONFIG names). Exits 1 when a check fails.
`,
  action: async (_args, options, ctx) => (await import("./doctor.js")).runDoctor(options, ctx),
});
