/**
 * Text from a third-party price list (model ids) made safe for a terminal: control characters
 * (C0, DEL, C1), bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069:
 * they can reorder what a line appears to say) and line/paragraph separators (U+2028, U+2029)
 * are shown escaped as `\uXXXX`, never sent raw.
 *
 * @example
 * printableText("gpt-4o\u202Egnp.exe"); // "gpt-4o\\u202egnp.exe"
 */
export function printableText(text: string): string {
  let out = "";
  for (const c of text) {
    const code = c.codePointAt(0) ?? 0;
    out += unsafe(code) ? `\\u${code.toString(16).padStart(4, "0")}` : c;
  }
  return out;
}

function unsafe(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0x2028 ||
    code === 0x2029
  );
}
