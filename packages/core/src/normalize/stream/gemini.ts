import { isObject, type JsonObject, type ReducedStream, type StreamReducer, takeFields } from "./reducer.js";

/** Envelope fields of a GenerateContentResponse that a chunk repeats. */
const ENVELOPE = ["modelVersion", "responseId", "createTime", "promptFeedback"] as const;

/** Per-candidate fields that matter for billing: why it stopped, and what grounding it used. */
const CANDIDATE = ["finishReason", "groundingMetadata", "urlContextMetadata"] as const;

/**
 * Gemini `streamGenerateContent` chunks (`?alt=sse`; the same `GenerateContentResponse` shape on
 * the Gemini API and Vertex AI).
 *
 * Every chunk may carry `usageMetadata`, and each one is the total for the response so far
 * (the prompt counts from the first chunk on, the candidate and thought counts growing): the
 * LAST `usageMetadata` wins; chunks are never added up.
 * (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent)
 *
 * Envelope: `modelVersion`, `responseId`, `createTime`, `promptFeedback` from the last chunk
 * that has them, `candidates` with each candidate's `index`, `finishReason`,
 * `groundingMetadata` (its `webSearchQueries` are the Google Search grounding that may be billed)
 * and `urlContextMetadata` (text parts are not accumulated), and `usageMetadata`.
 */
export class GeminiStreamReducer implements StreamReducer {
  private readonly envelope: JsonObject = {};
  private readonly candidates = new Map<number, JsonObject>();
  private usageMetadata: JsonObject | undefined;

  add(event: JsonObject): void {
    takeFields(this.envelope, event, ENVELOPE);
    if (isObject(event.usageMetadata)) this.usageMetadata = event.usageMetadata;
    if (!Array.isArray(event.candidates)) return;
    event.candidates.forEach((candidate: unknown, position) => {
      if (!isObject(candidate)) return;
      const index = typeof candidate.index === "number" ? candidate.index : position;
      const kept = this.candidates.get(index) ?? { index };
      takeFields(kept, candidate, CANDIDATE);
      this.candidates.set(index, kept);
    });
  }

  result(): ReducedStream {
    const response: JsonObject = { ...this.envelope };
    if (this.candidates.size > 0) {
      response.candidates = [...this.candidates.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, c]) => ({ ...c }));
    }
    if (this.usageMetadata !== undefined) response.usageMetadata = this.usageMetadata;
    return { usage: this.usageMetadata, response };
  }
}
