import { CorruptRecordError } from "@latch/core";
import type { RedisClient } from "./client.js";
import { LUA_SCRIPTS, type LuaScriptName } from "./lua/generated.js";

/**
 * Negative status codes returned by the Lua scripts (`src/lua/*.lua`), in one table.
 * Positive codes and 0 are successful outcomes documented in each script's header.
 */
export const LUA_STATUS = {
  "-1": "idempotency_conflict",
  "-2": "unknown_hold",
  "-3": "hold_already_resolved",
  "-4": "overflow",
  "-5": "superseded_not_stored",
  "-6": "cursor_past_end",
  "-7": "hold_of_other_account",
  "-8": "currency_mismatch",
} as const;

export type LuaStatus = (typeof LUA_STATUS)[keyof typeof LUA_STATUS];

/** The status of a negative code, or undefined for a success code. */
export function luaStatus(code: number): LuaStatus | undefined {
  if (code >= 0) return undefined;
  const status = (LUA_STATUS as Record<string, LuaStatus | undefined>)[String(code)];
  if (status === undefined) throw new Error(`Lua script returned unknown status code ${code}`);
  return status;
}

type ScriptArgument = string | number;
type ScriptCall = (...args: ScriptArgument[]) => Promise<unknown>;

/** `latch:<name>:<version>`: the version is a hash of the script, so releases never collide. */
export function commandName(name: LuaScriptName): string {
  const script = LUA_SCRIPTS[name];
  return `latch:${script.name}:${script.version}`;
}

/**
 * Registers every Latch script on the client with `defineCommand` (once per client). ioredis
 * sends EVALSHA and falls back to EVAL on NOSCRIPT, so a `SCRIPT FLUSH` or a failover to a
 * node that never saw the script costs one extra round trip, not an error.
 */
export function defineScripts(client: RedisClient): void {
  for (const script of Object.values(LUA_SCRIPTS)) {
    const name = commandName(script.name);
    if (typeof (client as unknown as Record<string, unknown>)[name] === "function") continue;
    client.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
}

/** Each script's command name, computed once (the hot path must not rebuild it per call). */
const COMMAND_NAMES = Object.fromEntries(
  Object.values(LUA_SCRIPTS).map((script) => [script.name, commandName(script.name)]),
) as Record<LuaScriptName, string>;

/** A script's reply: an array, or for some scripts' common case a plain integer or string. */
export type ScriptReply = unknown[] | number | string;

/** Rejects a reply that is not an array (or, when `scalars`, not an integer or a string either). */
function checkReply(name: LuaScriptName, scalars: boolean): (reply: unknown) => ScriptReply {
  return (reply) => {
    if (Array.isArray(reply) || (scalars && (typeof reply === "number" || typeof reply === "string"))) {
      return reply as ScriptReply;
    }
    throw new CorruptRecordError({ id: name, reason: "the script returned an unexpected kind of reply" });
  };
}

/** Each script's reply checks, made once (not a closure per call). */
const ARRAY_CHECKS = Object.fromEntries(
  Object.values(LUA_SCRIPTS).map((script) => [script.name, checkReply(script.name, false)]),
) as Record<LuaScriptName, (reply: unknown) => unknown[]>;
const SCALAR_CHECKS = Object.fromEntries(
  Object.values(LUA_SCRIPTS).map((script) => [script.name, checkReply(script.name, true)]),
) as Record<LuaScriptName, (reply: unknown) => ScriptReply>;

function callScript(
  client: RedisClient,
  name: LuaScriptName,
  keys: readonly string[],
  args: readonly ScriptArgument[],
): Promise<unknown> {
  const script = LUA_SCRIPTS[name];
  if (keys.length !== script.numberOfKeys) {
    return Promise.reject(new Error(`script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`));
  }
  const call = (client as unknown as Record<string, ScriptCall | undefined>)[COMMAND_NAMES[name]];
  if (call === undefined) return Promise.reject(new Error(`script ${name} is not defined on this client`));
  return call.apply(client, (keys as ScriptArgument[]).concat(args));
}

/** Runs a defined script: `keys` then `args`, exactly as many keys as its file name says. */
export function runScript(
  client: RedisClient,
  name: LuaScriptName,
  keys: readonly string[],
  args: readonly ScriptArgument[],
): Promise<unknown[]> {
  return callScript(client, name, keys, args).then(ARRAY_CHECKS[name]);
}

/**
 * Runs a script whose common case replies with a plain integer or string (its header says
 * which): Redis turns a Lua table into a reply field by field, which costs about as much as
 * one more command inside the script, so the hot paths avoid it.
 */
export function runScalarScript(
  client: RedisClient,
  name: LuaScriptName,
  keys: readonly string[],
  args: readonly ScriptArgument[],
): Promise<ScriptReply> {
  return callScript(client, name, keys, args).then(SCALAR_CHECKS[name]);
}

/** A reply element as a JS safe integer (Redis replies integers as numbers, stored text as strings). */
export function replyInteger(value: unknown, what: string): number {
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^-?\d+$/.test(value)
        ? Number(value)
        : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new CorruptRecordError({ id: what, reason: "stored value is not a safe integer" });
  }
  return n;
}

/** A reply element that must be a string. */
export function replyString(value: unknown, what: string): string {
  if (typeof value !== "string")
    throw new CorruptRecordError({ id: what, reason: "expected a string reply" });
  return value;
}
