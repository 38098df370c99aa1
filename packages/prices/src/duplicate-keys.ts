/**
 * The keys that occur more than once inside one entry of a JSON object of entries (a LiteLLM
 * map: `{ "<model>": { "<field>": … } }`), by entry. `JSON.parse` keeps the last of two equal
 * keys silently; this finds them. The text must already be valid JSON (the importer has parsed
 * it): this is a scanner, not a validator. Keys are compared decoded (`"mo\u0064e"` is `mode`).
 *
 * @example
 * duplicateEntryKeys('{"m": {"mode": "chat", "mode": "rerank"}}'); // Map { "m" => Set { "mode" } }
 */
export function duplicateEntryKeys(json: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  // One frame per open container: for objects, the keys seen and whether a key comes next.
  const stack: Array<{ object: boolean; keys: Set<string>; expectKey: boolean; key?: string }> = [];
  let entry: string | undefined;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      const top = stack.at(-1);
      if (top?.object && top.expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (stack.length === 1) entry = key;
        else if (stack.length === 2 && entry !== undefined && top.keys.has(key)) {
          const set = out.get(entry) ?? new Set<string>();
          out.set(entry, set);
          set.add(key);
        }
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      stack.push({ object: c === "{", keys: new Set(), expectKey: c === "{" });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      const top = stack.at(-1);
      if (top?.object) top.expectKey = true;
    }
  }
  return out;
}
