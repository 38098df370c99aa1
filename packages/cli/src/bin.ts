#!/usr/bin/env node
import type { CliContext } from "./context.js";
import { InterruptedError } from "./exit-codes.js";
import { main } from "./program.js";

const controller = new AbortController();
let interrupts = 0;
const onSignal = () => {
  interrupts++;
  // A second Ctrl-C does not wait for the clean-up.
  if (interrupts > 1) process.exit(130);
  controller.abort(new InterruptedError());
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// `latch lines | head`: the reader went away. Nothing is wrong with the command; stop quietly
// (exit 0, as a shell pipeline expects) instead of crashing with an EPIPE stack trace.
const onStreamError = (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
};
process.stdout.on("error", onStreamError);
process.stderr.on("error", onStreamError);

const ctx: CliContext = {
  signal: controller.signal,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};
process.exitCode = await main(process.argv.slice(2), ctx);
process.off("SIGINT", onSignal);
process.off("SIGTERM", onSignal);
