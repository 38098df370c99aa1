import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildScripts, renderGeneratedModule } from "./lua-codegen.js";

// Inlines src/lua/*.lua into src/lua/generated.ts, so nothing reads a file at run time.
const luaDirectory = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "lua");
const target = join(luaDirectory, "generated.ts");
writeFileSync(target, renderGeneratedModule(buildScripts(luaDirectory)));
console.log(`wrote ${target}`);
