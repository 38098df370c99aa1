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
  /**
   * The unfinished line so far. Only appended to (V8 keeps `+=` as a rope, O(1)) and read once
   * the line ends: each chunk is scanned once, so a long line (a base64 image) costs linear
   * time however finely it arrives.
   */
  private partial = "";
  /** The last chunk ended in `\r`: a `\n` opening the next one completes that `\r\n`. */
  private afterCR = false;
  private data: string[] = [];
  private readonly text = new TextDecoder();

  /** Decodes one chunk of the stream; returns the payloads of the events it completed. */
  push(chunk: string | Uint8Array): unknown[] {
    const out: unknown[] = [];
    this.scan(typeof chunk === "string" ? chunk : this.text.decode(chunk, { stream: true }), out);
    return out;
  }

  /**
   * Ends the stream. An event that the stream did not close with a blank line is still taken:
   * the spec would drop it, but a usage payload cut off that way is still what was reported.
   */
  end(): unknown[] {
    const out: unknown[] = [];
    this.scan(this.text.decode(), out);
    const rest = this.partial;
    this.partial = "";
    this.afterCR = false;
    if (rest !== "") this.line(rest, out);
    this.dispatch(out);
    return out;
  }

  private scan(text: string, out: unknown[]): void {
    if (text === "") return;
    let start = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.partial + text.slice(start, i);
      this.partial = "";
      this.line(line, out);
      if (c === 13) {
        if (i + 1 === text.length) this.afterCR = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start < text.length) this.partial += text.slice(start);
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
