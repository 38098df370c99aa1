import { readFile, stat } from "node:fs/promises";
import { jwtAuthenticator, type NodeConnectionOptions, nkeys } from "@nats-io/transport-node";

/** Where {@link natsConnectionOptions} finds what to authenticate with, beside the URL. */
export interface NatsCredentialsOptions {
  /**
   * Path of a `.creds` file (the user JWT and NKey seed that `nsc` or Synadia Cloud issue). Read
   * once, here; the file's contents are never logged.
   */
  creds?: string;
}

/** A server's scheme, as written. */
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Real `.creds` files are a few KB: a bigger file is not one (and is not read whole). */
const MAX_CREDS_BYTES = 1 << 20;

/**
 * The user JWT and NKey seed of a `.creds` file: the first two `---…---` fenced lines, as the
 * Go client (nkeys) finds them, also with CRLF line ends or no final newline (which the
 * JavaScript client's own parser refuses). Line by line: no regular expression that
 * backtracks over a long run of dashes.
 */
function credsParts(text: string): { jwt: string; seed: string } | undefined {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  const fence = (line: string) => line.length >= 6 && line.startsWith("---") && line.endsWith("---");
  const found: string[] = [];
  for (let i = 0; i + 2 < lines.length && found.length < 2; i++) {
    const [open, value, close] = [lines[i] ?? "", lines[i + 1] ?? "", lines[i + 2] ?? ""];
    if (fence(open) && /^[\w.=-]+$/.test(value) && fence(close)) {
      found.push(value);
      i += 2;
    }
  }
  const [jwt, seed] = found;
  return jwt !== undefined && seed !== undefined ? { jwt, seed } : undefined;
}

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
 *   `nats://token@host:4222` (a token), percent-encoded where they hold `, / ? # %` (an `@` in a
 *   password is read up to the last one, as Go's `net/url` does). The
 *   JavaScript client ignores a URL's credentials (it answers `Authorization Violation`), so they
 *   become its `user`/`pass` or `token` options and the servers are passed on without them (no
 *   error or log line of the client then shows them). Every server that names credentials must
 *   name the same ones;
 * - `tls://` on any server requires TLS (the client's `tls: {}`; pass your own `tls` after these
 *   options for a private CA or client certificates), as the Go client does;
 * - `options.creds`: a `.creds` file (JWT + NKey), read and checked now (CRLF line ends and no
 *   final newline accepted, as the Go client does); a missing, unreadable or malformed file, or
 *   one that is not a regular file (a FIFO would block), throws an error naming the path.
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
    const scheme = SCHEME.exec(server)?.[0] ?? "";
    const afterScheme = server.slice(scheme.length);
    // The authority ends at the first / ? #; its user info at its last @ (as Go's net/url and
    // the WHATWG URL parser read it: an unencoded @ in a password is the password's).
    const authorityEnd = afterScheme.search(/[/?#]/);
    const authority = authorityEnd === -1 ? afterScheme : afterScheme.slice(0, authorityEnd);
    const at = authority.lastIndexOf("@");
    const userinfo = at === -1 ? undefined : authority.slice(0, at);
    const shown = `${scheme}${afterScheme.slice(at + 1)}`;
    // What the client cannot parse it throws with the text in the error (`input`): a password
    // cut by an unencoded , / ? # would be there. Refused here, naming its place only.
    try {
      if (new URL(`${scheme === "" ? "nats://" : scheme}${shown.slice(scheme.length)}`).hostname === "")
        throw new TypeError("no host");
    } catch {
      throw new TypeError(
        `NATS server URL: server ${servers.length + 1} of the list is not [scheme://]host[:port] (a password or token holding , / ? # % must be percent-encoded)`,
      );
    }
    if (userinfo === undefined) {
      servers.push(server);
      continue;
    }
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
  // `tls://` requires TLS, as in the Go client (for the whole list): the JavaScript client
  // ignores the scheme and, with a server that offers no TLS (or a man in the middle that says
  // so), would send the password or token in the clear.
  if (servers.some((server) => server.toLowerCase().startsWith("tls://"))) result.tls = {};
  if (options.creds !== undefined && options.creds !== "") {
    if (auth !== undefined)
      throw new TypeError(
        `NATS server URL ${servers.join(",")}: names credentials, and a credentials file ${options.creds} is given too: give one of them`,
      );
    const file = options.creds;
    const refuse = (why: string) => new Error(`NATS credentials file ${file}: ${why}`);
    let contents: Buffer;
    try {
      // Not read unless a regular file of a credentials file's size: reading a FIFO waits for a
      // writer forever, a device may never end.
      const info = await stat(file);
      if (!info.isFile()) throw refuse(info.isDirectory() ? "EISDIR" : "not a regular file");
      if (info.size > MAX_CREDS_BYTES)
        throw refuse(`larger than ${MAX_CREDS_BYTES} bytes: not a .creds file`);
      contents = await readFile(file);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(`NATS credentials file ${file}: `)) throw error;
      throw refuse((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
    // Checked now, so a file that is not one is named here rather than failing every connect.
    const parts = credsParts(contents.toString("utf8"));
    const seed = new TextEncoder().encode(parts?.seed ?? "");
    try {
      if (parts === undefined) throw new Error("no JWT and seed");
      nkeys.fromSeed(seed);
    } catch {
      throw refuse("not a .creds file (expected a user JWT and an NKey seed, each between ---- lines)");
    }
    result.authenticator = jwtAuthenticator(parts.jwt, seed);
  }
  return result;
}
