import { copyFileSync } from "node:fs";
import { releasedPath, reportPath } from "./api-report.js";

// After `changeset version` consumed the changesets: the current surface is the released one
// (`pnpm --filter @latch/core api:release`, run by the root `version-packages` script).
copyFileSync(reportPath, releasedPath);
console.log(`wrote ${releasedPath}`);
