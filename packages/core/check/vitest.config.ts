import { defineConfig } from "vitest/config";

// Checks run by hand against inputs that are not in the repository (see each file's header);
// `pnpm test` does not include them.
export default defineConfig({
  resolve: { conditions: ["dev-source"] },
  ssr: { resolve: { conditions: ["dev-source"] } },
  test: { include: ["check/**/*.check.ts"], testTimeout: 120_000 },
});
