import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { request } from "node:http";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A 400 MiB body sent to an authenticated route of a real server (@hono/node-server, in a child
// process so its memory is measured alone) is refused with a 413 problem after at most the
// limit (1 MiB) is read, and the server's memory stays flat. The body is generated as it is
// sent (one 64 KiB buffer written again and again), never held whole.

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const MiB = 1_048_576;
const TOTAL = 400 * MiB;
const CHUNK = Buffer.alloc(64 * 1_024, 0x20);

let child: ChildProcess;
let port = 0;
let key = "";

function ask<T>(message: string): Promise<T> {
  return new Promise((resolve) => {
    child.once("message", (reply) => resolve(reply as T));
    child.send(message);
  });
}

beforeAll(async () => {
  child = fork(new URL("./body-limit-server.ts", import.meta.url), {
    execArgv: ["--conditions=dev-source", "--import", TSX, "--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = await new Promise<{ port: number; key: string }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as { port: number; key: string }));
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  port = ready.port;
  key = ready.key;
}, 120_000);

afterAll(() => {
  child?.kill();
});

interface Sent {
  status: number;
  contentType: string | undefined;
  body: string;
  sentBytes: number;
}

/**
 * POSTs up to TOTAL bytes, chunked or with a declared Content-Length; stops when the answer comes.
 * The server answers 413, reads on for at most 500 ms (@hono/node-server's drain) and then
 * closes the socket. On a loaded machine the client can be stalled past that window before it
 * parses the answer, and then sees EPIPE or ECONNRESET instead: that attempt is repeated (at
 * most three in all); any other error, or the same one three times, fails the test.
 */
async function stream(declareLength: boolean): Promise<Sent> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await streamOnce(declareLength);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= 3 || (code !== "EPIPE" && code !== "ECONNRESET")) throw error;
    }
  }
}

function streamOnce(declareLength: boolean): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const req = request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/api/billing/keys",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        ...(declareLength ? { "content-length": String(TOTAL) } : {}),
      },
    });
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body, sentBytes });
        req.destroy();
      });
    });
    // Once answered, the server closes the connection: a write error then is expected.
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    // Yield to the event loop after every chunk, so the answer is read as soon as it arrives.
    void (async () => {
      while (!answered && !req.destroyed && sentBytes < TOTAL) {
        sentBytes += CHUNK.length;
        if (!req.write(CHUNK)) await once(req, "drain");
        await new Promise((next) => setImmediate(next));
      }
      if (!answered && !req.destroyed) req.end();
    })().catch(() => undefined);
  });
}

describe("a 400 MiB body against the 1 MiB default limit (real server, child process)", () => {
  for (const declareLength of [false, true]) {
    it(`answers 413 problem+json with flat memory (${declareLength ? "Content-Length" : "chunked"})`, async () => {
      await ask("baseline");
      const sent = await stream(declareLength);
      const memory = await ask<{
        baseline: { rss: number; heapUsed: number };
        peak: { rss: number; heapUsed: number };
      }>("memory");
      expect(sent.status).toBe(413);
      expect(sent.contentType).toBe("application/problem+json");
      expect(JSON.parse(sent.body)).toMatchObject({
        type: "urn:latch:problem:content_too_large",
        status: 413,
        request_id: expect.any(String),
      });
      expect(sent.sentBytes).toBeLessThan(TOTAL); // refused long before the end of the body
      expect(memory.peak.rss - memory.baseline.rss).toBeLessThan(64 * MiB);
      expect(memory.peak.heapUsed - memory.baseline.heapUsed).toBeLessThan(64 * MiB);
    }, 300_000);
  }
});
