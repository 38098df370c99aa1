import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** The root README's short example, run as written (its console output captured). */
describe("README example", () => {
  it("runs and prints the exact total", async () => {
    const readme = await readFile(new URL("../../../README.md", import.meta.url), "utf8");
    const code = /## A short example[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), "latch-readme-"));
    const cwd = process.cwd();
    process.chdir(dir); // the facade's default spool lives under ./.latch
    const printed: unknown[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => printed.push(...args);
    try {
      const core = await import("@latch/core");
      const body = (code as string).replace(/^import[\s\S]*?from "@latch\/core";\n/m, "");
      const run = new Function(
        "core",
        `return (async () => { const { ${Object.keys(core).join(", ")} } = core;\n${body}\n})();`,
      );
      await run(core);
    } finally {
      console.log = log;
      process.chdir(cwd);
      await rm(dir, { recursive: true, force: true });
    }
    expect(printed).toEqual(["0.008125"]);
  });
});
