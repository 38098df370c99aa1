/**
 * `latch-ingest` whose connection closes for good (the server came back requiring a password
 * the bin does not have: the client gives up even with unlimited reconnects): the process exits 1, having
 * closed its setup (stores that hold the process open, as a database or Redis client does), and
 * the setup's close() failing as well does not hide why the worker ended.
 */
import { connect } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { ensureIngestStreams } from "../src/index.js";
import { freshStream, waitFor } from "./support/fixtures.js";
import { startIngestBin } from "./support/ingest-bin.js";
import { startNatsServer } from "./support/nats-server.js";

it("latch-ingest exits 1 when its connection closes for good, its setup closed", async () => {
  const server = await startNatsServer();
  try {
    const url = server.url;
    const stream = freshStream("binclosed");
    const setup = await connect({ servers: url });
    await ensureIngestStreams(setup, { stream });
    await setup.close();
    const { child, output, exited } = startIngestBin({
      stream,
      natsUrl: url,
      config: "held-open.config.ts",
      env: { LATCH_TEST_CLOSE_THROWS: "1" },
    });
    try {
      await waitFor("the bin to consume", async () => output().includes("consuming"), 60_000);
      await server.restart(["--user", "latch", "--pass", "now-required"]);
      const code = await Promise.race([
        exited,
        new Promise<"still running">((r) => setTimeout(() => r("still running"), 45_000)),
      ]);
      expect(code, output()).toBe(1);
      // The worker's failure is the process's error; the setup's failing close() is told too.
      expect(output()).toMatch(/latch-ingest: .*NATS connection is closed/);
      expect(output()).toContain("latch-test: setup closed");
      expect(output()).toContain("latch-ingest: closing the setup failed too: pool.end() failed");
    } finally {
      child.kill("SIGKILL");
    }
  } finally {
    await server.close();
  }
}, 150_000);
