import { writeFileSync } from "node:fs";
import { buildApiReport, renderApiReport, reportPath } from "./api-report.js";

// Rewrites api/exports.json from the source (`pnpm --filter @latch/core api:report`).
writeFileSync(reportPath, renderApiReport(buildApiReport()));
console.log(`wrote ${reportPath}`);
