import { open } from "node:fs/promises";
import { LITELLM_MAP_URL } from "@latch/prices";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";

/**
 * The largest cost map `latch prices update` reads. LiteLLM's whole map is about 1.5 MB; a
 * file or response past this is refused before it is held in memory (parsing ~20 MB already
 * takes ~0.5 GB), so a wrong URL or a hostile server cannot exhaust the process.
 */
export const MAX_COST_MAP_BYTES = 64 * 1024 * 1024;

/** How long a download may take in all, so a stalled server cannot hang a scheduled update. */
export const COST_MAP_TIMEOUT_MS = 120_000;

/** How many redirects a download follows. */
const MAX_REDIRECTS = 5;

/** The longest ETag recorded as attribution; a longer one is not kept (the map still is). */
const MAX_ETAG_LENGTH = 2048;

export interface CostMapText {
  text: string;
  url: string;
  etag?: string;
}

/**
 * Reads `--from`: an `http://` or `https://` URL (size-capped, timed out, cut-off bodies
 * refused) or a file path. Any other `scheme://` is a usage error rather than a missing file.
 */
export async function readCostMap(
  from: string,
  sourceUrl: string | undefined,
  ctx: CliContext,
  limits: { maxBytes?: number; timeoutMs?: number } = {},
): Promise<CostMapText> {
  const maxBytes = limits.maxBytes ?? MAX_COST_MAP_BYTES;
  if (/^https?:\/\//i.test(from)) {
    return download(from, sourceUrl, ctx, maxBytes, limits.timeoutMs ?? COST_MAP_TIMEOUT_MS);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(from)) {
    throw new UsageError("prices update: --from: expected an http:// or https:// URL, or a file path");
  }
  return { text: await readLimited(from, maxBytes), url: sourceUrl ?? LITELLM_MAP_URL };
}

async function download(
  from: string,
  sourceUrl: string | undefined,
  ctx: CliContext,
  maxBytes: number,
  timeoutMs: number,
): Promise<CostMapText> {
  // A plain timer and controller, not AbortSignal.any + AbortSignal.timeout: a composite signal
  // holds its sources weakly and, once collected, never fires (a stalled server hung the run).
  const controller = new AbortController();
  const signal = controller.signal;
  const timer = setTimeout(
    () => controller.abort(new DOMException("the download timed out", "TimeoutError")),
    timeoutMs,
  );
  const onInterrupt = () => controller.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onInterrupt();
  else ctx.signal.addEventListener("abort", onInterrupt, { once: true });
  try {
    return await fetchCapped(from, sourceUrl, signal, maxBytes);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onInterrupt);
  }
}

async function fetchCapped(
  from: string,
  sourceUrl: string | undefined,
  signal: AbortSignal,
  maxBytes: number,
): Promise<CostMapText> {
  let response: Response;
  // Redirects are followed here, not by fetch: one from https to http (a downgrade anyone on the
  // path could answer) or to another scheme is refused, and the URL finally read is recorded.
  let url = from;
  for (let hop = 0; ; hop++) {
    try {
      response = await fetch(url, { signal, redirect: "manual" });
    } catch (error) {
      throw new CommandError(`prices update: --from: the URL could not be fetched${timedOut(signal)}`, {
        cause: error,
      });
    }
    const location = response.headers.get("location");
    if (response.status < 300 || response.status > 399 || location === null) break;
    await response.body?.cancel().catch(() => undefined);
    if (hop >= MAX_REDIRECTS) {
      throw new CommandError(`prices update: --from: more than ${MAX_REDIRECTS} redirects`);
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new CommandError("prices update: --from: the server redirected to an invalid URL");
    }
    if (next.protocol !== "https:" && next.protocol !== "http:") {
      throw new CommandError("prices update: --from: the server redirected to a URL that is not http(s)");
    }
    if (new URL(url).protocol === "https:" && next.protocol === "http:") {
      throw new CommandError(
        "prices update: --from: refusing a redirect from https to http (the map would arrive unauthenticated)",
      );
    }
    url = next.href;
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw new CommandError(`prices update: --from: the server answered HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof CommandError) {
      await response.body?.cancel().catch(() => undefined);
      throw error;
    }
    throw new CommandError(
      `prices update: --from: the download was cut off before its end${timedOut(signal)}`,
      { cause: error },
    );
  }
  const out: CostMapText = { text: decode(chunks, size), url: sourceUrl ?? url };
  // A server's ETag is attribution only: an empty or oversized one is left out, not fatal.
  const etag = response.headers.get("etag");
  if (etag !== null && etag.length > 0 && etag.length <= MAX_ETAG_LENGTH) out.etag = etag;
  return out;
}

async function readLimited(path: string, maxBytes: number): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, "r");
    const { size } = await handle.stat();
    if (size > maxBytes) throw tooLarge(maxBytes);
    // Counted while read too: a pipe (`--from <(curl …)`) or a device reports size 0.
    const chunks: Uint8Array[] = [];
    let read = 0;
    for await (const chunk of handle.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      read += chunk.byteLength;
      if (read > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
    return decode(chunks, read);
  } catch (error) {
    if (error instanceof CommandError) throw error;
    const code = (error as { code?: string }).code;
    throw new CommandError(`prices update: --from: cannot read the file${code ? ` (${code})` : ""}`, {
      cause: error,
    });
  } finally {
    await handle?.close();
  }
}

function decode(chunks: Uint8Array[], size: number): string {
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  // Like response.text(): UTF-8, a leading BOM dropped, bad bytes replaced (then refused by the parser if in a number).
  return new TextDecoder("utf-8").decode(all);
}

function tooLarge(maxBytes: number): CommandError {
  return new CommandError(
    `prices update: --from: the map is larger than ${maxBytes / 1024 / 1024} MiB; refusing to read it`,
  );
}

function timedOut(signal: AbortSignal): string {
  return signal.aborted && (signal.reason as { name?: string } | undefined)?.name === "TimeoutError"
    ? " (timed out)"
    : "";
}
