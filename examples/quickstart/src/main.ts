/**
 * Latch quickstart — `pnpm start` from the repository root.
 *
 * 1. a provider response arrives; its usage is normalized into disjoint meters,
 * 2. the price snapshot in effect when the call completed is resolved,
 * 3. the observation is rated exactly, and the total rounded once, to cents, half-even.
 */
import { runQuickstart } from "./quickstart.js";

const { lines } = runQuickstart();
for (const line of lines) console.log(line);
