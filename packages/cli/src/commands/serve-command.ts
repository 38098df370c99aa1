import { defineCommand, flag, list, type OptionValues, text } from "../command.js";

/** Where the billing API's data lives: Postgres, as `latch migrate` set it up. */
export const BILLING_DB_OPTIONS = [
  text("--database-url <url>", "connection URL (env LATCH_DATABASE_URL or DATABASE_URL)"),
  text("--schema <name>", "schema migrated by `latch migrate` (env LATCH_SCHEMA; default latch)"),
] as const;

export const SERVE_OPTIONS = [
  ...BILLING_DB_OPTIONS,
  text("--port <port>", "TCP port; 0 picks a free one (env LATCH_PORT; default 8787)"),
  text("--host <host>", "address to listen on (env LATCH_HOST; default 127.0.0.1)"),
  flag("--credits", "also mount the prepaid-credit routes (the Postgres credit ledger)"),
] as const;
export type ServeOptions = OptionValues<typeof SERVE_OPTIONS>;

export const KEYS_CREATE_OPTIONS = [
  ...BILLING_DB_OPTIONS,
  text("--tenant <id>", "the key's owner (subject.tenantId)"),
  text("--name <name>", "a label for the key", { default: "admin" }),
  list("--scopes <scopes...>", "scopes (default keys:read keys:write usage:read billing:read)"),
  flag("--json", "print the key record and its plaintext as JSON"),
] as const;
export type KeysCreateOptions = OptionValues<typeof KEYS_CREATE_OPTIONS>;

const SECRET_HELP = `
The API keys' HMAC secret (≥ 32 bytes) comes from LATCH_API_KEY_SECRET, never a flag: keep it out
of the database and of the process list.
`;

/** `latch serve`. */
export const serveCommand = defineCommand({
  name: "serve",
  description: "run the billing HTTP API (@latch/http: keys, usage, summary, lines, export) on Postgres",
  options: SERVE_OPTIONS,
  helpAfter: SECRET_HELP,
  action: async (_args, options, ctx) => (await import("./serve.js")).runServe(options, ctx),
});

/** `latch keys create`. */
export const keysCommand = defineCommand({
  name: "keys",
  description: "API keys of the billing API (the first key of a tenant, to call `latch serve` with)",
  commands: [
    defineCommand({
      name: "create",
      description: "create an API key; its plaintext is printed once, the database keeps a digest",
      options: KEYS_CREATE_OPTIONS,
      helpAfter: SECRET_HELP,
      action: async (_args, options, ctx) => (await import("./serve.js")).runKeysCreate(options, ctx),
    }),
  ],
});
