/**
 * Server-sent events → the JSON payloads of their `data` fields, in order. Internal: the public
 * surface is the stream accumulator (`createStreamAccumulator`), which feeds on it.
 *
 * Follows the WHATWG event-stream rules that matter for LLM providers: lines end in `\n`,
 * `\r\n` or `\r` (Gemini sends `\r\n`), `:` lines are comments, one optional space after the
 * colon is dropped, several `data:` lines of one event are joined with `\n`, and a blank line
 * ends the event. A `data` that is not JSON (OpenAI's `[DONE]`) is skipped. Chunks may split
 * anywhere, even inside a line or a `\r\n`.
 */
export class SseDataDecoder {
  private buffer = "";
  private scanned = 0;
  private data: string[] = [];
  private readonly text = new TextDecoder();

  /** Decodes one chunk of the stream; returns the payloads of the events it completed. */
  push(chunk: string | Uint8Array): unknown[] {
    this.buffer += typeof chunk === "string" ? chunk : this.text.decode(chunk, { stream: true });
    const out: unknown[] = [];
    let start = 0;
    let i = this.scanned; // the unfinished line was scanned up to here by the previous call
    for (; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A lone `\r` at the end of the buffer may be the first half of `\r\n`: wait for more.
      if (c === 13 && i === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, i), out);
      if (c === 13 && this.buffer.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    this.scanned = i - start;
    return out;
  }

  /**
   * Ends the stream. An event that the stream did not close with a blank line is still taken:
   * the spec would drop it, but a usage payload cut off that way is still what was reported.
   */
  end(): unknown[] {
    const out: unknown[] = [];
    const rest = this.buffer + this.text.decode();
    this.buffer = "";
    this.scanned = 0;
    for (const line of rest.split(/\r\n|\r|\n/)) this.line(line, out);
    this.dispatch(out);
    return out;
  }

  private line(line: string, out: unknown[]): void {
    if (line === "") {
      this.dispatch(out);
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== "data") return; // event, id, retry: the payload says what it is
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.data.push(value);
  }

  private dispatch(out: unknown[]): void {
    if (this.data.length === 0) return;
    const payload = this.data.join("\n");
    this.data = [];
    try {
      out.push(JSON.parse(payload));
    } catch {
      // `[DONE]` and other non-JSON payloads carry no usage.
    }
  }
}
