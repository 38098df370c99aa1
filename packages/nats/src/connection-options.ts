import { readFile } from "node:fs/promises";
import { credsAuthenticator, type NodeConnectionOptions } from "@nats-io/transport-node";

/** Where {@link natsConnectionOptions} finds what to authenticate with, beside the URL. */
export interface NatsCredentialsOptions {
  /**
   * Path of a `.creds` file (the user JWT and NKey seed that `nsc` or Synadia Cloud issue). Read
   * once, here; the file's contents are never logged.
   */
  creds?: string;
}

/** `user:password@` or `token@` at the start of a server's authority, as written. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@(.*)$/i;

/** A URL part percent-decoded, or an error naming the server (its credentials left out). */
function decoded(part: string, server: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new TypeError(`NATS server URL ${server}: its credentials are not valid percent-encoding`);
  }
}

/**
 * Connection options for `connect()` of `@nats-io/transport-node` from a NATS URL as the `nats`
 * CLI and the Go client take it, so `latch-ingest --nats`, `NATS_URL` and the example gateway
 * reach a server that requires authentication:
 * - one server or several, comma-separated (`nats://a:4222,nats://b:4222`);
 * - credentials in the URL: `nats://user:password@host:4222` (user and password) or
 *   `nats://token@host:4222` (a token), percent-encoded where they hold `@ : / %`. The
 *   JavaScript client ignores a URL's credentials (it answers `Authorization Violation`), so they
 *   become its `user`/`pass` or `token` options and the servers are passed on without them (no
 *   error or log line of the client then shows them). Every server that names credentials must
 *   name the same ones;
 * - `options.creds`: a `.creds` file (JWT + NKey), read now; a missing or unreadable file throws
 *   an error naming the path.
 *
 * @example
 * const connection = await connect({
 *   ...(await natsConnectionOptions(process.env.NATS_URL ?? "nats://127.0.0.1:4222", {
 *     creds: process.env.NATS_CREDS,
 *   })),
 *   maxReconnectAttempts: -1,
 * });
 */
export async function natsConnectionOptions(
  url: string,
  options: NatsCredentialsOptions = {},
): Promise<NodeConnectionOptions> {
  const servers: string[] = [];
  let auth: { user: string; pass: string } | { token: string } | undefined;
  let authOf = "";
  for (const raw of url.split(",")) {
    const server = raw.trim();
    if (server === "") continue;
    const match = USERINFO.exec(server);
    if (match === null) {
      servers.push(server);
      continue;
    }
    const [, scheme = "", userinfo = "", rest = ""] = match;
    const shown = `${scheme}${rest}`;
    const colon = userinfo.indexOf(":");
    const found =
      colon === -1
        ? { token: decoded(userinfo, shown) }
        : { user: decoded(userinfo.slice(0, colon), shown), pass: decoded(userinfo.slice(colon + 1), shown) };
    const key = JSON.stringify(found);
    if (auth !== undefined && key !== authOf)
      throw new TypeError(
        `NATS server URL ${shown}: names other credentials than an earlier server of the list (one connection authenticates once)`,
      );
    auth = found;
    authOf = key;
    servers.push(shown);
  }
  if (servers.length === 0)
    throw new TypeError(`NATS server URL: expected nats://host:port, got ${JSON.stringify(url)}`);
  const result: NodeConnectionOptions = { servers, ...auth };
  if (options.creds !== undefined && options.creds !== "") {
    if (auth !== undefined)
      throw new TypeError(
        `NATS server URL ${servers.join(",")}: names credentials, and a credentials file ${options.creds} is given too: give one of them`,
      );
    let contents: Uint8Array;
    try {
      contents = await readFile(options.creds);
    } catch (error) {
      throw new Error(
        `NATS credentials file ${options.creds}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    result.authenticator = credsAuthenticator(contents);
  }
  return result;
}
