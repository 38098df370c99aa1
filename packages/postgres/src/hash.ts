import * as crypto from "node:crypto";

/** SHA-256 hex of a string's UTF-8 bytes: the one-shot `crypto.hash` (Node ≥ 20.12) when present. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "hex")
    : (text) => crypto.createHash("sha256").update(text).digest("hex");

/**
 * `canonicalHash(value)` of `@latch/core` when `canonical` is `canonicalJson(value)`: lets a
 * store hash and store the same serialisation without producing it twice. A test pins the two
 * to each other.
 */
export function hashCanonical(canonical: string): string {
  return `sha256:${sha256Hex(canonical)}`;
}
