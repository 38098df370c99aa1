import { describe, expect, it } from "vitest";
import { LUA_SCRIPTS, type LuaScriptName, LuaScripts } from "../src/lua/generated.js";

/**
 * A script's KEYS and ARGV as its header lists them, read here with plain patterns (not by
 * the generator's parser), so a wrapper that sends them in another order fails.
 */
function headerInputs(name: LuaScriptName) {
  const lua = LUA_SCRIPTS[name].lua;
  const input = lua.slice(lua.indexOf("Input:"), lua.indexOf("Output:"));
  const keys = [...input.matchAll(/^\s*KEYS\[(\d+)\] (\w+)/gm)].map((m) => ({
    index: Number(m[1]),
    name: m[2],
  }));
  const args = [...input.matchAll(/^\s*ARGV\[(\d+)\] (\w+)(\?)?/gm)].map((m) => ({
    index: Number(m[1]),
    name: m[2] as string,
    optional: m[3] === "?",
  }));
  // ARGV[3i-2] eventId … ARGV[3i] observation: position stride - offset within each item.
  const group = [...input.matchAll(/^\s*ARGV\[(\d+)i(?:-(\d+))?\]\s+(\w+)/gm)].map((m) => ({
    position: Number(m[1]) - Number(m[2] ?? 0),
    name: m[3] as string,
  }));
  const output = lua.slice(lua.indexOf("Output:"), lua.indexOf("]]"));
  const scalar = /^ {1,6}[a-z]\w*\s/m.test(output);
  return { keys, args, group, scalar };
}

interface Sent {
  name: LuaScriptName;
  keysAndArgs: string[];
  scalar: boolean;
}

/** The wrappers over a sender that records each call instead of sending it. */
function recording(): { scripts: LuaScripts; sent: Sent[] } {
  const sent: Sent[] = [];
  const scripts = new LuaScripts((name, keysAndArgs, scalar) => {
    sent.push({ name, keysAndArgs, scalar });
    return Promise.resolve([]);
  });
  return { scripts, sent };
}

type Wrapper = (keys: Record<string, string>, args?: Record<string, unknown>) => Promise<unknown>;

const names = Object.keys(LUA_SCRIPTS) as LuaScriptName[];

describe("generated script wrappers (one method per script, KEYS and ARGV in header order)", () => {
  it.each(names)("%s sends its KEYS then its ARGV in the order of its header", async (name) => {
    const { keys, args, group, scalar } = headerInputs(name);
    expect(keys.map((k) => k.index)).toEqual(keys.map((_, i) => i + 1));
    expect(keys).toHaveLength(LUA_SCRIPTS[name].numberOfKeys);
    expect(args.map((a) => a.index)).toEqual(args.map((_, i) => i + 1));

    // Each value names its slot, so the list sent spells out the order.
    const keyValues = Object.fromEntries(keys.map((k) => [k.name, `KEYS[${k.index}]`]));
    const argValues: Record<string, unknown> = Object.fromEntries(
      args.map((a) => [a.name, `ARGV[${a.index}]`]),
    );
    const expected = [...keys.map((k) => `KEYS[${k.index}]`), ...args.map((a) => `ARGV[${a.index}]`)];
    if (group.length > 0) {
      const ordered = [...group].sort((a, b) => a.position - b.position);
      const item = (i: number) =>
        Object.fromEntries(ordered.map((g) => [g.name, `item ${i} ARGV[${g.position}]`]));
      argValues.items = [item(1), item(2)];
      for (const i of [1, 2]) expected.push(...ordered.map((g) => `item ${i} ARGV[${g.position}]`));
    }

    const { scripts, sent } = recording();
    const wrapper = (scripts as unknown as Record<string, Wrapper>)[name];
    expect(typeof wrapper).toBe("function");
    await (wrapper as Wrapper).call(scripts, keyValues, argValues);
    expect(sent).toEqual([{ name, keysAndArgs: expected, scalar }]);

    const optional = args.filter((a) => a.optional);
    expect(optional.length).toBeLessThanOrEqual(1);
    if (optional.length === 1) {
      // Left out, the optional last ARGV is not sent at all (the script tests ARGV[n] for nil).
      const without = { ...argValues, [(optional[0] as { name: string }).name]: undefined };
      await (wrapper as Wrapper).call(scripts, keyValues, without);
      expect(sent[1]?.keysAndArgs).toEqual(expected.slice(0, -1));
    }
  });

  it("has a method for every script and nothing else", () => {
    const methods = Object.getOwnPropertyNames(LuaScripts.prototype).filter((m) => m !== "constructor");
    expect(methods.sort()).toEqual([...names].sort());
  });
});
