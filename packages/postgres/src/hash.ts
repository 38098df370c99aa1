import { createHash } from "node:crypto";

/**
 * `canonicalHash(value)` of `@latch/core` when `canonical` is `canonicalJson(value)`: lets a
 * store hash and store the same serialisation without producing it twice. A test pins the two
 * to each other.
 */
export function hashCanonical(canonical: string): string {
  return `sha256:${createHash("sha256").update(canonical).digest("hex")}`;
}
