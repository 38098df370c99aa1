import { runConformance } from "@latch/testkit";
import { creditSuites } from "./credit-support.js";
import { inMemoryPglite } from "./pglite-support.js";

// The credit suite on an in-memory PGlite of its own (PGlite is one session: its
// transactions queue, so concurrency tests exercise the same lock-then-decide path).
const schema = "latch";
const pglite = inMemoryPglite(schema);
runConformance({
  name: "pglite",
  setup: pglite.setup,
  teardown: pglite.teardown,
  suites: creditSuites(pglite.db, schema, 1_000),
});
