import { createHmac, timingSafeEqual } from "node:crypto";
import { LatchValidationError } from "../errors/index.js";

/** A stored key digest: 64 lowercase hex characters (HMAC-SHA256). */
export const API_KEY_DIGEST = /^[0-9a-f]{64}$/;

/**
 * Turns plaintext keys into the digests stores keep: HMAC-SHA256 under a server-side secret.
 * A database dump alone cannot confirm a guessed key (the secret is not in it), and the
 * plaintext never reaches a store.
 *
 * @example
 * const hasher = new ApiKeyHasher(process.env.LATCH_API_KEY_SECRET!); // ≥ 32 bytes
 * const digest = hasher.digest(plaintext);                             // 64 hex chars
 */
export class ApiKeyHasher {
  readonly #secret: Buffer;

  /** @param secret at least 32 bytes (a string is taken as UTF-8). */
  constructor(secret: string | Uint8Array) {
    const bytes = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
    if (bytes.length < 32) throw LatchValidationError.at("ApiKeyHasher", "secret", "at least 32 bytes");
    this.#secret = bytes;
  }

  /** The digest of a plaintext key, as lowercase hex. */
  digest(plaintext: string): string {
    return createHmac("sha256", this.#secret).update(plaintext, "utf8").digest("hex");
  }

  /** Compares two digests in constant time (false for anything that is not a digest). */
  static equal(a: string, b: string): boolean {
    if (!API_KEY_DIGEST.test(a) || !API_KEY_DIGEST.test(b)) return false;
    return timingSafeEqual(Buffer.from(a, "hex"), Buffer.from(b, "hex"));
  }
}
