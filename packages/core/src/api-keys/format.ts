import { randomBytes } from "node:crypto";

/**
 * The API key format: `latch_<mode>_<body><checksum>`.
 *
 * - `mode` is `live` or `test`, so a leaked key says where it works (and secret scanners can
 *   match the prefix).
 * - `body` is 32 base62 characters drawn uniformly from `crypto.randomBytes` (≈190 bits).
 * - `checksum` is the CRC32 of `latch_<mode>_<body>` as 6 base62 characters. It is not a
 *   secret and protects nothing: it lets a server reject a mistyped or made-up key *before*
 *   any store lookup, the way GitHub's token checksums do.
 */

/** `live` keys bill real usage; `test` keys are for sandboxes. Only the prefix differs. */
export type ApiKeyMode = "live" | "test";

/** The modes a key can be issued in. */
export const API_KEY_MODES: readonly ApiKeyMode[] = ["live", "test"];

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
/** Every key has this length (both prefixes are 11 characters). */
const KEY_LENGTH = "latch_live_".length + BODY_LENGTH + CHECKSUM_LENGTH;
const KEY = /^latch_(live|test)_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib) of an ASCII string. */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function checksum(prefixAndBody: string): string {
  let n = crc32(prefixAndBody);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** `length` base62 characters, uniform: bytes ≥ 248 (= 4 × 62) are discarded, not folded. */
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A key split into its parts. */
export interface ParsedApiKey {
  mode: ApiKeyMode;
  /** The random part: the secret. */
  body: string;
}

/**
 * Issues a new plaintext key of `mode`. Hand it to the caller once and store only its digest
 * (see {@link ApiKeyHasher}).
 *
 * @example
 * const key = generateApiKey("live"); // "latch_live_3xQ…Zk1b9Qw"
 * parseApiKey(key)?.mode;             // "live"
 */
export function generateApiKey(mode: ApiKeyMode): string {
  const head = `latch_${mode}_${randomBase62(BODY_LENGTH)}`;
  return head + checksum(head);
}

/**
 * Checks a presented key's shape and checksum with no I/O: `undefined` when the text is not a
 * well-formed Latch key (wrong prefix, length, alphabet or checksum). Runs in time linear in
 * at most 49 characters.
 *
 * @example
 * parseApiKey("latch_live_oops"); // undefined
 */
export function parseApiKey(text: unknown): ParsedApiKey | undefined {
  if (typeof text !== "string" || text.length !== KEY_LENGTH) return undefined;
  const match = KEY.exec(text);
  if (match === null) return undefined;
  const [, mode, body, sum] = match as unknown as [string, ApiKeyMode, string, string];
  if (checksum(`latch_${mode}_${body}`) !== sum) return undefined;
  return { mode, body };
}

/** A fresh key id, `key_` and 24 base62 characters (not secret; shown in listings and logs). */
export function generateApiKeyId(): string {
  return `key_${randomBase62(24)}`;
}
