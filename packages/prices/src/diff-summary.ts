import type { CatalogDiff } from "./catalog.js";
import { printableText as printable } from "./printable.js";

/**
 * A human-readable summary of an update, for a terminal: one count line, then up to `limit`
 * lines per kind (`~ gpt-4o: input_tokens, output_tokens`, `+ new-model`, `- old-model`).
 *
 * @example
 * formatCatalogDiff(diff); // "prices changed: 1, added: 2, removed: 0, unchanged: 40\n~ gpt-4o: input_tokens\n…"
 */
export function formatCatalogDiff(diff: CatalogDiff, limit = 20): string {
  const lines = [
    `prices changed: ${diff.changed.length}, added: ${diff.added.length}, removed: ${diff.removed.length}, unchanged: ${diff.unchanged}`,
  ];
  const list = (mark: string, items: CatalogDiff["added"]) => {
    for (const item of items.slice(0, limit)) {
      lines.push(`${mark} ${printable(item.key)}${item.meters ? `: ${item.meters.join(", ")}` : ""}`);
    }
    if (items.length > limit) lines.push(`${mark} … and ${items.length - limit} more`);
  };
  list("~", diff.changed);
  list("+", diff.added);
  list("-", diff.removed);
  return lines.join("\n");
}
