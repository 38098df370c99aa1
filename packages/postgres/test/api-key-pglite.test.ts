import { runConformance } from "@latch/testkit";
import { apiKeySuite } from "./api-key-support.js";
import { inMemoryPglite } from "./pglite-support.js";

const schema = "latch";
const pglite = inMemoryPglite(schema);
runConformance({
  name: "pglite",
  setup: pglite.setup,
  teardown: pglite.teardown,
  suites: [apiKeySuite(pglite.db, schema)],
});
