/**
 * An S3-compatible server for the tests, in-process on loopback: `@20minutes/s3rver` (a
 * maintained fork of s3rver) behind a small `node:http` proxy that
 * - enforces `If-None-Match: *` on PutObject and CompleteMultipartUpload (no npm emulator
 *   does: a second PUT would overwrite), answering 412 like S3;
 * - injects faults on request: an S3 error status/code, a connection reset before the request
 *   reaches the server, or a reset after the server has applied it (a lost response).
 *
 * The exporter under test talks to the proxy; the independent reader talks to s3rver directly.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "@20minutes/s3rver";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";

export interface RequestInfo {
  method: string;
  /** Path without the query, e.g. `/bucket/a/b.json`. */
  path: string;
  query: URLSearchParams;
  /** The status the proxy answered with (`0` for a reset), once answered. */
  status?: number;
}

export type Fault =
  | { status: number; code: string; message?: string; headers?: Record<string, string> }
  | "reset-before"
  | "reset-after";

export interface FaultRule {
  match: (request: RequestInfo) => boolean;
  fault: Fault;
  /** How many matching requests get the fault (then the rule is spent). Default 1. */
  times?: number;
}

export interface TestS3 {
  /** Endpoint of the proxy (what exporters use). */
  endpoint: string;
  /** Endpoint of s3rver itself (what independent readers use). */
  directEndpoint: string;
  /** Creates a fresh, empty bucket and returns its name. */
  createBucket(): Promise<string>;
  /** A client for `endpoint` (or `directEndpoint` with `{ direct: true }`), configured for the emulator. */
  client(options?: { direct?: boolean; maxAttempts?: number }): S3Client;
  /** Faults for the next matching requests. */
  inject(rule: FaultRule): void;
  /** Drops every pending fault. */
  clearFaults(): void;
  /** Requests the proxy has seen (method + path), in order. */
  readonly requests: RequestInfo[];
  /** Every key in a bucket (read from s3rver directly). */
  list(bucket: string, prefix?: string): Promise<string[]>;
  /** An object's bytes, or undefined (read from s3rver directly). */
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
  /** Deletes every bucket created, stops both servers and removes the data folder. */
  close(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>latch-test</RequestId></Error>`;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function forward(
  port: number,
  method: string,
  url: string,
  headers: http.IncomingHttpHeaders,
  body: Buffer | undefined,
): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

export async function startTestS3(): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), "latch-s3rver-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    vhostBuckets: false,
  });
  const address = (await server.run()) as AddressInfo;
  const upstreamPort = address.port;

  const rules: Array<FaultRule & { left: number }> = [];
  const requests: RequestInfo[] = [];
  /** Serialises conditional writes per key (check-then-write must not interleave). */
  const keyLocks = new Map<string, Promise<void>>();

  async function withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = keyLocks.get(key) ?? Promise.resolve();
    let release = () => {};
    const current = new Promise<void>((r) => {
      release = r;
    });
    const chained = previous.then(() => current);
    keyLocks.set(key, chained);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (keyLocks.get(key) === chained) keyLocks.delete(key);
    }
  }

  const proxy = http.createServer((req, res) => {
    void (async () => {
      const url = req.url ?? "/";
      const parsed = new URL(url, "http://proxy");
      const info: RequestInfo = {
        method: req.method ?? "GET",
        path: parsed.pathname,
        query: parsed.searchParams,
      };
      requests.push(info);
      const body = await readBody(req);

      const rule = rules.find((r) => r.left > 0 && r.match(info));
      if (rule !== undefined) rule.left--;
      const fault = rule?.fault;
      if (fault === "reset-before") {
        info.status = 0;
        req.socket.destroy();
        return;
      }
      if (fault !== undefined && fault !== "reset-after") {
        info.status = fault.status;
        const xml = errorXml(fault.code, fault.message ?? fault.code);
        res.writeHead(fault.status, { "content-type": "application/xml", ...fault.headers });
        res.end(xml);
        return;
      }

      const headers = { ...req.headers };
      const conditional =
        headers["if-none-match"] === "*" &&
        ((info.method === "PUT" && !info.query.has("partNumber")) ||
          (info.method === "POST" && info.query.has("uploadId")));
      if (conditional) delete headers["if-none-match"];

      const send = async (): Promise<Upstream> => {
        if (conditional) {
          const head = await forward(
            upstreamPort,
            "HEAD",
            parsed.pathname,
            { host: req.headers.host },
            undefined,
          );
          if (head.status === 200) {
            return {
              status: 412,
              headers: { "content-type": "application/xml" },
              body: Buffer.from(
                errorXml(
                  "PreconditionFailed",
                  "At least one of the pre-conditions you specified did not hold",
                ),
              ),
            };
          }
        }
        return forward(upstreamPort, info.method, url, headers, body.length > 0 ? body : undefined);
      };
      const upstream = conditional ? await withKeyLock(parsed.pathname, send) : await send();
      info.status = fault === "reset-after" ? 0 : upstream.status;
      if (fault === "reset-after") {
        req.socket.destroy();
        return;
      }
      const out = { ...upstream.headers };
      delete out["transfer-encoding"];
      delete out.connection;
      // A HEAD answer has no body but keeps the object's content-length.
      if (info.method !== "HEAD") out["content-length"] = String(upstream.body.length);
      res.writeHead(upstream.status, out);
      res.end(upstream.body);
    })().catch((error: unknown) => {
      res.writeHead(500, { "content-type": "application/xml" });
      res.end(errorXml("InternalError", String(error)));
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const proxyPort = (proxy.address() as AddressInfo).port;

  const endpoint = `http://127.0.0.1:${proxyPort}`;
  const directEndpoint = `http://127.0.0.1:${upstreamPort}`;
  const makeClient = (options?: { direct?: boolean; maxAttempts?: number }) =>
    new S3Client({
      endpoint: options?.direct ? directEndpoint : endpoint,
      region: "us-east-1",
      credentials: CREDENTIALS,
      forcePathStyle: true,
      maxAttempts: options?.maxAttempts ?? 1,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  const direct = makeClient({ direct: true, maxAttempts: 3 });
  const buckets: string[] = [];

  async function list(bucket: string, prefix?: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await direct.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 1000 }),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  async function get(bucket: string, key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await direct.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await out.Body?.transformToByteArray();
    } catch (e) {
      if ((e as { name?: string }).name === "NoSuchKey") return undefined;
      throw e;
    }
  }

  return {
    endpoint,
    directEndpoint,
    requests,
    async createBucket() {
      const bucket = `latch-test-${randomUUID().slice(0, 12)}`;
      await direct.send(new CreateBucketCommand({ Bucket: bucket }));
      buckets.push(bucket);
      return bucket;
    },
    client: makeClient,
    inject(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clearFaults() {
      rules.length = 0;
    },
    list,
    get,
    async close() {
      for (const bucket of buckets) {
        const keys = await list(bucket);
        for (let i = 0; i < keys.length; i += 1000) {
          await direct.send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
            }),
          );
        }
        await direct.send(new DeleteBucketCommand({ Bucket: bucket }));
      }
      direct.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      proxy.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
