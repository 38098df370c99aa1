import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildScripts, renderGeneratedModule } from "../scripts/lua-codegen.js";
import { LUA_SCRIPTS } from "../src/lua/generated.js";
import { LUA_STATUS } from "../src/script-errors.js";

const luaDirectory = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "lua");

describe("generated Lua module", () => {
  it("is current with src/lua/*.lua (run `pnpm --filter @latch/redis generate:lua` when this fails)", () => {
    const scripts = buildScripts(luaDirectory);
    expect(LUA_SCRIPTS).toEqual(Object.fromEntries(scripts.map((s) => [s.name, s])));
    expect(readFileSync(join(luaDirectory, "generated.ts"), "utf8")).toBe(renderGeneratedModule(scripts));
  });

  it("names each script <name>-<numberOfKeys>.lua, with a header naming every KEYS and ARGV it reads", () => {
    for (const script of Object.values(LUA_SCRIPTS)) {
      const header = script.lua.slice(0, script.lua.indexOf("]]"));
      expect(header).toContain("Input:");
      expect(header).toContain("Output:");
      for (const [, index] of script.lua.matchAll(/KEYS\[(\d+)\]/g)) {
        expect(Number(index)).toBeLessThanOrEqual(script.numberOfKeys);
        expect(header).toContain(`KEYS[${index}]`);
      }
      for (const [, index] of script.lua.matchAll(/ARGV\[(\d+)\]/g))
        expect(header).toContain(`ARGV[${index}]`);
      // Keys are never built inside Lua (Cluster safety): no string concatenation into a key position.
      expect(script.lua).not.toMatch(/rcall\("\w+", [^K"][^,)]*\.\./);
    }
  });

  it("maps every negative status code a script returns in the one TypeScript table", () => {
    for (const script of Object.values(LUA_SCRIPTS)) {
      for (const [, code] of script.lua.matchAll(/return \{(-\d+)/g))
        expect(LUA_STATUS).toHaveProperty(code as string);
    }
  });
});
