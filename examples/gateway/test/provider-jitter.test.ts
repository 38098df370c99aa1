/**
 * The fake provider's first-byte jitter (the benchmark's jittered rows): each answer waits the
 * delay plus its own uniform draw up to the jitter, so answers to requests sent together come
 * apart; a negative or non-finite value is refused naming the option. Durations are checked
 * from below and by their spread only (a loaded machine makes every answer later, never
 * earlier, and does not bring 12 uniform draws over a second within 200 ms of each other:
 * that chance is below 10⁻⁷).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";

let provider: FakeProvider;

beforeAll(async () => {
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider?.close();
});

/** Time until the first byte (the status line) of one chat completion, ms. */
async function firstByte(id: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${provider.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": id },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 8 }),
  });
  const elapsed = performance.now() - t0;
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return elapsed;
}

it("holds each answer the delay plus its own draw up to the jitter", async () => {
  provider.setFirstByteDelay(100, 1_000);
  try {
    const times = await Promise.all(Array.from({ length: 12 }, (_, i) => firstByte(`jitter-${i}`)));
    for (const t of times) expect(t).toBeGreaterThanOrEqual(99);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(200);
  } finally {
    provider.setFirstByteDelay(0);
  }
});

it("without jitter every answer waits the delay (and setFirstByteDelay(ms) clears a jitter set before)", async () => {
  provider.setFirstByteDelay(0, 1_000);
  provider.setFirstByteDelay(150);
  const times = await Promise.all(Array.from({ length: 4 }, (_, i) => firstByte(`steady-${i}`)));
  for (const t of times) expect(t).toBeGreaterThanOrEqual(149);
  provider.setFirstByteDelay(0);
});

it("refuses a negative or non-finite jitter, naming it", async () => {
  expect(() => provider.setFirstByteDelay(10, -1)).toThrow(/firstByteJitterMs must be ≥ 0, got -1/);
  expect(() => provider.setFirstByteDelay(10, Number.NaN)).toThrow(/firstByteJitterMs/);
  await expect(startFakeProvider({ firstByteJitterMs: Number.POSITIVE_INFINITY })).rejects.toThrow(
    /firstByteJitterMs must be ≥ 0, got Infinity/,
  );
});
