/**
 * natsConnectionOptions and `latch-ingest --creds`: servers that require authentication (user
 * and password, token, and operator mode with a `.creds` file, as NGS/Synadia Cloud issue),
 * each a real nats-server of the test's own.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "@latch/postgres";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureIngestStreams, natsConnectionOptions, natsIngestLog } from "../src/index.js";
import { DATABASE_URL, freshStream, observation, waitFor } from "./support/fixtures.js";
import { type IngestBinOptions, runIngestBin, startIngestBin } from "./support/ingest-bin.js";
import { startNatsServer, type TestNatsServer } from "./support/nats-server.js";
import { type OperatorSetup, writeOperatorSetup } from "./support/operator.js";

const PASSWORD = "p@ss:w/rd%é";
const TOKEN = "t0ken-with-!$&'()*+;=";

describe("natsConnectionOptions (no server)", () => {
  it("passes servers without credentials on as they are", async () => {
    expect(await natsConnectionOptions("nats://127.0.0.1:4222")).toEqual({
      servers: ["nats://127.0.0.1:4222"],
    });
    expect(await natsConnectionOptions(" nats://a:4222 , b:4222 ,")).toEqual({
      servers: ["nats://a:4222", "b:4222"],
    });
  });

  it("takes user and password, or a token, out of the URL, percent-decoded", async () => {
    expect(await natsConnectionOptions(`nats://alice:${encodeURIComponent(PASSWORD)}@h:4222`)).toEqual({
      servers: ["nats://h:4222"],
      user: "alice",
      pass: PASSWORD,
    });
    expect(
      await natsConnectionOptions(
        `tls://${encodeURIComponent(TOKEN)}@h:4222,tls://${encodeURIComponent(TOKEN)}@g:4222`,
      ),
    ).toEqual({
      servers: ["tls://h:4222", "tls://g:4222"],
      token: TOKEN,
      tls: {},
    });
    expect(await natsConnectionOptions("bob:@h:4222")).toEqual({
      servers: ["h:4222"],
      user: "bob",
      pass: "",
    });
  });

  it("refuses what it cannot use, naming the server and never the secret", async () => {
    const messages: string[] = [];
    for (const url of [
      "nats://a:sekrit1@h:4222,nats://a:sekrit2@g:4222",
      "nats://a:%E0%A4%A@h:4222",
      " , ",
    ]) {
      const error = await natsConnectionOptions(url).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(TypeError);
      messages.push((error as Error).message);
    }
    expect(messages[0]).toContain("nats://g:4222");
    expect(messages[1]).toContain("nats://h:4222");
    for (const m of messages) expect(m).not.toMatch(/sekrit|%E0/);
    const dir = await mkdtemp(join(tmpdir(), "latch-creds-"));
    try {
      const missing = join(dir, "missing.creds");
      await expect(natsConnectionOptions("nats://h:4222", { creds: missing })).rejects.toThrow(
        `NATS credentials file ${missing}: ENOENT`,
      );
      const both = await natsConnectionOptions("nats://a:secret@h:4222", { creds: missing }).catch(
        (e: unknown) => e as Error,
      );
      expect(both).toBeInstanceOf(TypeError);
      expect((both as Error).message).not.toContain("secret");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("natsConnectionOptions: URLs as Go's net/url reads them (no server)", () => {
  it("reads a password holding an unencoded @ up to the last @ of the authority", async () => {
    expect(await natsConnectionOptions("nats://u:p@ss@h:4222")).toEqual({
      servers: ["nats://h:4222"],
      user: "u",
      pass: "p@ss",
    });
    expect(await natsConnectionOptions("nats://u:p@[::1]:4222/,u:p@h:4222/x@y")).toEqual({
      servers: ["nats://[::1]:4222/", "h:4222/x@y"],
      user: "u",
      pass: "p",
    });
  });

  it("refuses a server the client cannot parse without the secret that an unencoded , / # cut", async () => {
    for (const url of [
      "nats://alice:se,cretpw@h:4222",
      "nats://alice:se/cretpw@h:4222",
      "nats://alice:se#cretpw@h:4222",
    ]) {
      const error = await natsConnectionOptions(url).catch((e: unknown) => e as Error);
      expect(error, url).toBeInstanceOf(TypeError);
      expect((error as Error).message).toContain("server 1 of the list");
      expect(`${(error as Error).message} ${JSON.stringify(error)}`).not.toMatch(/alice|cretpw/);
    }
  });
});

describe("natsConnectionOptions: .creds files that are not one (no server)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "latch-badcreds-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("names the file: empty, garbage, a directory, a FIFO (not waited on), too big, a long line of dashes", async () => {
    const files: Record<string, string> = {};
    for (const [name, text] of [
      ["empty", ""],
      ["garbage", "hello world\n"],
      // The client's own creds regular expression backtracks for minutes on this.
      ["dashes", "-".repeat(5_000)],
      ["big", "x".repeat((1 << 20) + 1)],
    ] as const) {
      files[name] = join(dir, `${name}.creds`);
      await writeFile(files[name], text);
    }
    files.directory = join(dir, "directory.creds");
    await mkdir(files.directory);
    files.fifo = join(dir, "fifo.creds");
    execFileSync("mkfifo", [files.fifo]);
    const expected: Record<string, string> = {
      empty: "not a .creds file",
      garbage: "not a .creds file",
      dashes: "not a .creds file",
      big: "larger than 1048576 bytes",
      directory: "EISDIR",
      fifo: "not a regular file",
    };
    for (const [name, path] of Object.entries(files))
      await expect(natsConnectionOptions("nats://h:4222", { creds: path }), name).rejects.toThrow(
        `NATS credentials file ${path}: ${expected[name]}`,
      );
  }, 30_000);
});

describe("against servers that require authentication", () => {
  let passwordServer: TestNatsServer;
  let tokenServer: TestNatsServer;
  let operatorServer: TestNatsServer;
  let operator: OperatorSetup;
  let dir: string;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const stream = freshStream("creds");
  const schema = `latch_nats_${stream.toLowerCase()}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "latch-operator-"));
    operator = await writeOperatorSetup(dir);
    passwordServer = await startNatsServer({ args: ["--user", "alice", "--pass", PASSWORD] });
    tokenServer = await startNatsServer({ args: ["--auth", TOKEN] });
    operatorServer = await startNatsServer({ args: ["-c", operator.config] });
    await migrate(pool, { schema });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([passwordServer?.close(), tokenServer?.close(), operatorServer?.close()]);
    await rm(dir, { recursive: true, force: true });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  const withCredentials = (server: TestNatsServer, userinfo: string) =>
    server.url.replace("nats://", `nats://${userinfo}@`);

  it("connects with the URL's user and password or token, where the client alone is refused", async () => {
    for (const [server, userinfo] of [
      [passwordServer, `alice:${encodeURIComponent(PASSWORD)}`],
      [tokenServer, encodeURIComponent(TOKEN)],
    ] as const) {
      const url = withCredentials(server, userinfo);
      await expect(connect({ servers: url, maxReconnectAttempts: 0 })).rejects.toThrow(
        "Authorization Violation",
      );
      const nc = await connect({ ...(await natsConnectionOptions(url)), maxReconnectAttempts: 0 });
      expect(nc.info?.auth_required).toBe(true);
      await nc.close();
    }
    const wrong = await connect({
      ...(await natsConnectionOptions(withCredentials(passwordServer, "alice:wrong"))),
      maxReconnectAttempts: 0,
    }).catch((e: unknown) => e as Error);
    expect((wrong as Error).message).toContain("Authorization Violation");
    expect((wrong as Error).message).not.toContain("wrong");
  }, 60_000);

  it("connects with a .creds file in operator mode (JetStream works); a user of an unknown account is refused", async () => {
    const nc = await connect({
      ...(await natsConnectionOptions(operatorServer.url, { creds: operator.creds })),
      maxReconnectAttempts: 0,
    });
    try {
      await ensureIngestStreams(nc, { stream: "CREDS_CHECK" });
    } finally {
      await nc.close();
    }
    await expect(
      connect({
        ...(await natsConnectionOptions(operatorServer.url, { creds: operator.foreignCreds })),
        maxReconnectAttempts: 0,
      }),
    ).rejects.toThrow("Authorization Violation");
  }, 60_000);

  it("tls:// requires TLS, as in the Go client: the password is not sent to a server without it", async () => {
    const url = withCredentials(passwordServer, `alice:${encodeURIComponent(PASSWORD)}`).replace(
      "nats://",
      "tls://",
    );
    const error = await connect({ ...(await natsConnectionOptions(url)), maxReconnectAttempts: 0 }).catch(
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("does not support 'tls'");
    // A server with TLS (a self-signed certificate: its CA passed after the options) is reached.
    const cert = join(dir, "server.pem");
    const key = join(dir, "server.key");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
      ].concat([
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        key,
        "-out",
        cert,
      ]),
      { stdio: "ignore" },
    );
    const tlsServer = await startNatsServer({
      args: ["--tls", "--tlscert", cert, "--tlskey", key, "--user", "alice", "--pass", PASSWORD],
    });
    try {
      const tlsUrl = withCredentials(tlsServer, `alice:${encodeURIComponent(PASSWORD)}`).replace(
        "nats://",
        "tls://",
      );
      const nc = await connect({
        ...(await natsConnectionOptions(tlsUrl)),
        tls: { caFile: cert },
        maxReconnectAttempts: 0,
      });
      expect(nc.info?.tls_required).toBe(true);
      await nc.close();
    } finally {
      await tlsServer.close();
    }
  }, 60_000);

  it("connects with a .creds file with CRLF line ends or no final newline (as the nats CLI does)", async () => {
    const text = await readFile(operator.creds, "utf8");
    for (const [name, variant] of [
      ["crlf.creds", text.replace(/\n/g, "\r\n")],
      ["no-newline.creds", text.trimEnd()],
    ] as const) {
      const path = join(dir, name);
      await writeFile(path, variant, { mode: 0o600 });
      const nc = await connect({
        ...(await natsConnectionOptions(operatorServer.url, { creds: path })),
        maxReconnectAttempts: 0,
      });
      await nc.flush();
      await nc.close();
    }
  }, 60_000);

  it("authenticates again after each server restarts (password, token, .creds)", async () => {
    for (const [server, options] of [
      [
        passwordServer,
        await natsConnectionOptions(withCredentials(passwordServer, `alice:${encodeURIComponent(PASSWORD)}`)),
      ],
      [tokenServer, await natsConnectionOptions(withCredentials(tokenServer, encodeURIComponent(TOKEN)))],
      [operatorServer, await natsConnectionOptions(operatorServer.url, { creds: operator.creds })],
    ] as const) {
      const nc = await connect({ ...options, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
      try {
        const statuses = nc.status();
        const reconnected = (async () => {
          for await (const s of statuses) if (s.type === "reconnect") return s;
          return undefined;
        })();
        await server.restart();
        const status = await reconnected;
        expect(status?.type).toBe("reconnect");
        expect(JSON.stringify(status)).not.toMatch(/alice|t0ken|p@ss/);
        await nc.flush();
        expect(nc.isClosed()).toBe(false);
      } finally {
        await nc.close();
      }
    }
  }, 120_000);

  /** Runs the bin to its end (SIGKILLed after 40 s: code null); its exit code and everything it printed. */
  const run = (options: IngestBinOptions) => runIngestBin(options);

  it("latch-ingest --creds (or NATS_CREDS) and a URL with a password store what was published", async () => {
    const nc = await connect({
      ...(await natsConnectionOptions(operatorServer.url, { creds: operator.creds })),
      maxReconnectAttempts: 0,
    });
    try {
      await ensureIngestStreams(nc, { stream });
      const log = natsIngestLog({ connection: nc, stream });
      for (let i = 0; i < 5; i++) await log.publish(observation(`creds-${i}:0:openai`));
      const { child, output, exited } = startIngestBin({
        stream,
        natsUrl: operatorServer.url,
        args: [
          "--config",
          join(import.meta.dirname, "support", "ingest.config.ts"),
          "--creds",
          operator.creds,
        ],
        env: { LATCH_TEST_SCHEMA: schema },
      });
      try {
        await waitFor("the bin to store 5 calls", async () => {
          const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".rated_records`);
          return (rows[0] as { n: number }).n === 5;
        });
      } catch (error) {
        child.kill("SIGKILL");
        throw new Error(`${(error as Error).message}; output: ${output()}`);
      }
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(output()).toMatch(/stopped .*"stored":5/);
    } finally {
      await nc.close();
    }
    // replay-dead-letters takes them too: NATS_CREDS, and a password in --nats.
    expect(
      await run({
        stream,
        natsUrl: operatorServer.url,
        args: ["replay-dead-letters"],
        env: { NATS_CREDS: operator.creds },
      }),
    ).toEqual({
      code: 0,
      output: `latch-ingest: replayed 0 dead letters of ${stream}; 0 kept\n`,
    });
    const passwordUrl = withCredentials(passwordServer, `alice:${encodeURIComponent(PASSWORD)}`);
    const ncPassword = await connect({
      ...(await natsConnectionOptions(passwordUrl)),
      maxReconnectAttempts: 0,
    });
    try {
      await ensureIngestStreams(ncPassword, { stream });
    } finally {
      await ncPassword.close();
    }
    expect(await run({ stream, natsUrl: passwordUrl, args: ["replay-dead-letters"] })).toEqual({
      code: 0,
      output: `latch-ingest: replayed 0 dead letters of ${stream}; 0 kept\n`,
    });
  }, 120_000);

  it("latch-ingest (worker) exits 1, its setup closed, when its credentials are refused or its .creds file is missing", async () => {
    for (const [natsUrl, extra] of [
      [operatorServer.url, ["--creds", join(dir, "nope.creds")]],
      [withCredentials(passwordServer, "alice:not-the-password"), []],
    ] as const) {
      const result = await run({
        stream,
        natsUrl,
        args: ["--config", join(import.meta.dirname, "support", "held-open.config.ts"), ...extra],
      });
      expect(result.code, result.output).toBe(1);
      expect(result.output).toContain("latch-test: setup closed");
      expect(result.output).not.toContain("not-the-password");
    }
  }, 60_000);

  it("latch-ingest names a credentials file it cannot read, and a refused server, without the secret", async () => {
    const missing = join(dir, "nope.creds");
    const noFile = await run({
      stream,
      natsUrl: operatorServer.url,
      args: ["replay-dead-letters", "--creds", missing],
    });
    expect(noFile.code).toBe(1);
    expect(noFile.output).toContain(`NATS credentials file ${missing}: ENOENT`);
    const refused = await run({
      stream,
      natsUrl: withCredentials(passwordServer, "alice:not-the-password"),
      args: ["replay-dead-letters"],
    });
    expect(refused.code).toBe(1);
    expect(refused.output).toContain("Authorization Violation");
    expect(refused.output).not.toContain("not-the-password");
  }, 60_000);
});
