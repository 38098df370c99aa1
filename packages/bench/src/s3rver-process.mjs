// Runs @20minutes/s3rver on a loopback port in its own process (as a remote S3 would be) and
// prints {"port": n} once listening. Stops on SIGTERM or when stdin closes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "@20minutes/s3rver";

const directory = await mkdtemp(join(tmpdir(), "latch-bench-s3-"));
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  allowMismatchedSignatures: true,
  vhostBuckets: false,
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

const stop = async () => {
  await server.close().catch(() => undefined);
  await rm(directory, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
