import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCostMap } from "../src/commands/read-cost-map.js";
import type { CliContext } from "../src/context.js";

// Redirects of a map download, served from loopback: plain HTTP, and HTTPS with a throwaway
// self-signed certificate made by openssl for this test.
const MAP = `{"m": {"mode": "chat", "input_cost_per_token": 1e-06}}`;
let dir: string;
let http: Server;
let https: HttpsServer;
let plain: string;
let secure: string;
const ctx = { signal: new AbortController().signal } as CliContext;
const tls = process.env.NODE_TLS_REJECT_UNAUTHORIZED;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-redirects-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-days",
      "1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  http = createServer((req, res) => {
    if (req.url === "/map.json") res.writeHead(200).end(MAP);
    else if (req.url === "/moved") res.writeHead(301, { location: "/map.json" }).end();
    else if (req.url === "/loop") res.writeHead(302, { location: "/loop" }).end();
    else if (req.url === "/to-file") res.writeHead(302, { location: "file:///etc/passwd" }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  plain = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  https = createHttpsServer(
    { key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) },
    (req, res) => {
      if (req.url === "/downgrade") res.writeHead(302, { location: `${plain}/map.json` }).end();
      else if (req.url === "/map.json") res.writeHead(200).end(MAP);
      else res.writeHead(404).end();
    },
  );
  await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
  secure = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
  // The throwaway certificate is self-signed: trusted for this test file only.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
});
afterAll(async () => {
  if (tls === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  else process.env.NODE_TLS_REJECT_UNAUTHORIZED = tls;
  await new Promise((resolve) => http.close(resolve));
  await new Promise((resolve) => https.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe("latch prices update --from <url>: redirects", () => {
  it("follows a redirect and records the URL finally read", async () => {
    const read = await readCostMap(`${plain}/moved`, undefined, ctx);
    expect(read.text).toBe(MAP);
    expect(read.url).toBe(`${plain}/map.json`);
  });

  it("reads over https", async () => {
    expect((await readCostMap(`${secure}/map.json`, undefined, ctx)).url).toBe(`${secure}/map.json`);
  });

  it("refuses a redirect from https to http", async () => {
    await expect(readCostMap(`${secure}/downgrade`, undefined, ctx)).rejects.toThrow(
      /refusing a redirect from https to http/,
    );
  });

  it("refuses a redirect to another scheme, and a redirect loop", async () => {
    await expect(readCostMap(`${plain}/to-file`, undefined, ctx)).rejects.toThrow(/not http\(s\)/);
    await expect(readCostMap(`${plain}/loop`, undefined, ctx)).rejects.toThrow(/more than 5 redirects/);
  });
});
