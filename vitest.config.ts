import { defineConfig } from "vitest/config";

// One run over every package: tests read workspace packages from source via the
// `dev-source` export condition, so `pnpm test` needs no build.
export default defineConfig({
  resolve: { conditions: ["dev-source"] },
  ssr: { resolve: { conditions: ["dev-source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    testTimeout: 60_000,
    // CI shares two cores: a beforeAll/afterAll that starts or stops servers may take seconds.
    hookTimeout: 60_000,
    // The in-process S3 emulator (@latch/s3's tests) encrypts ListObjectsV2 continuation
    // tokens with a cipher OpenSSL 3 only offers through its legacy provider.
    execArgv: ["--openssl-legacy-provider"],
  },
});
