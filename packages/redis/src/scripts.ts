import { CorruptRecordError } from "@latch/core/errors";
import type { RedisClient } from "./client.js";
import { LUA_SCRIPTS, type LuaScriptName, LuaScripts, type ScriptSender } from "./lua/generated.js";

/** A defined command on the client: `latch:<name>:<version>`, called with KEYS then ARGV. */
type ScriptCall = (...keysAndArgs: string[]) => Promise<unknown>;

/** `latch:<name>:<version>`: the version is a hash of the script, so releases never collide. */
export function commandName(name: LuaScriptName): string {
  const script = LUA_SCRIPTS[name];
  return `latch:${script.name}:${script.version}`;
}

/**
 * Registers every Latch script on the client with `defineCommand` (once per client) and
 * returns the typed wrappers that call them (one method per script, KEYS and ARGV built in
 * header order). ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT, so a
 * `SCRIPT FLUSH` or a failover to a node that never saw the script costs one extra round
 * trip, not an error.
 */
export function defineScripts(client: RedisClient): LuaScripts {
  for (const script of Object.values(LUA_SCRIPTS)) {
    const name = commandName(script.name);
    if (typeof (client as unknown as Record<string, unknown>)[name] === "function") continue;
    client.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  return new LuaScripts(scriptSender(client));
}

/** Each script's command name, computed once (the hot path must not rebuild it per call). */
const COMMAND_NAMES = Object.fromEntries(
  Object.values(LUA_SCRIPTS).map((script) => [script.name, commandName(script.name)]),
) as Record<LuaScriptName, string>;

/** A script's reply: an array, or for some scripts' common case a plain integer or string. */
type ScriptReply = unknown[] | number | string;

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

/** Sends a defined script (its KEYS then its ARGV, as the wrappers build them) and checks the reply's kind. */
function scriptSender(client: RedisClient): ScriptSender {
  return (name, keysAndArgs, scalar) => {
    const call = (client as unknown as Record<string, ScriptCall | undefined>)[COMMAND_NAMES[name]];
    if (call === undefined) return Promise.reject(new Error(`script ${name} is not defined on this client`));
    return call.apply(client, keysAndArgs).then(scalar ? SCALAR_CHECKS[name] : ARRAY_CHECKS[name]);
  };
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
