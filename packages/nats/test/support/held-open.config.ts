/**
 * A `latch-ingest --config` module whose stores hold the process open until `close()` (as a
 * database or Redis client does): the bin exits only if it closes its setup. With
 * LATCH_TEST_CLOSE_THROWS=1, `close()` then throws (as a pool whose server is gone may).
 */
import { MemoryObservationStore, MemoryRatedRecordStore } from "@latch/core";
import type { IngestSetup } from "../../src/index.js";
import { pricing } from "./fixtures.js";

export default function setup(): IngestSetup {
  const client = setInterval(() => {}, 1_000);
  return {
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: pricing(),
    close: async () => {
      clearInterval(client);
      console.log("latch-test: setup closed");
      if (process.env.LATCH_TEST_CLOSE_THROWS === "1") throw new Error("pool.end() failed");
    },
  };
}
