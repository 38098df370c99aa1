/**
 * A NATS server in operator (decentralised JWT) mode, as NGS/Synadia Cloud and `nsc` set up:
 * an operator, one account with JetStream enabled, and users whose `.creds` files (user JWT +
 * NKey seed) are written here. The JWTs are signed with real ed25519 NKeys (`@nats-io/nkeys`),
 * in the format of nats-io/jwt v2 (header `{"typ":"JWT","alg":"ed25519-nkey"}`, claims
 * `jti iat iss sub name nats{type,version}`), so the server verifies them as it would any other.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url");

function jwt(signer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: signer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  // The jti is the claims' hash (as nats-io/jwt computes it); the server does not check it.
  claims.jti = createHash("sha256").update(JSON.stringify(claims)).digest("base64url");
  const signing = `${b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${b64url(signer.sign(new TextEncoder().encode(signing)))}`;
}

function credsFile(userJwt: string, seed: Uint8Array): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    userJwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    new TextDecoder().decode(seed),
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

export interface OperatorSetup {
  /** The server's config file (pass as `-c <file>`). */
  config: string;
  /** A `.creds` file of a user of the account. */
  creds: string;
  /** A `.creds` file whose user JWT is signed by a key the server does not know. */
  foreignCreds: string;
}

/** Writes the config and creds files into `dir`. */
export async function writeOperatorSetup(dir: string): Promise<OperatorSetup> {
  const operator = createOperator();
  const account = createAccount();
  // JetStream needs a system account in operator mode.
  const system = createAccount();
  const operatorJwt = jwt(operator, operator.getPublicKey(), "latch-test-operator", {
    type: "operator",
    system_account: system.getPublicKey(),
  });
  const systemJwt = jwt(operator, system.getPublicKey(), "SYS", { type: "account" });
  const accountJwt = jwt(operator, account.getPublicKey(), "latch-test-account", {
    type: "account",
    limits: {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
  });
  const userCreds = async (signer: KeyPair, file: string) => {
    const user = createUser();
    const userJwt = jwt(signer, user.getPublicKey(), "latch-test-user", {
      type: "user",
      pub: {},
      sub: {},
      subs: -1,
      data: -1,
      payload: -1,
    });
    const path = join(dir, file);
    await writeFile(path, credsFile(userJwt, user.getSeed()), { mode: 0o600 });
    return path;
  };
  const config = join(dir, "operator.conf");
  await writeFile(
    config,
    [
      `operator: ${JSON.stringify(operatorJwt)}`,
      `system_account: ${system.getPublicKey()}`,
      "resolver: MEMORY",
      `resolver_preload: { ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}, ${system.getPublicKey()}: ${JSON.stringify(systemJwt)} }`,
      "",
    ].join("\n"),
  );
  return {
    config,
    creds: await userCreds(account, "user.creds"),
    foreignCreds: await userCreds(createAccount(), "foreign.creds"),
  };
}
