/**
 * The fake provider's first-byte jitter (the benchmark's jittered rows): each answer waits the
 * delay plus its own uniform draw up to the jitter, so answers to requests sent together come
 * apart; a negative or non-finite value is refused naming the option. Durations are checked
 * from below and by their spread only (a loaded machine makes every answer later, never
 * earlier, and does not bring 12 uniform draws over a second within 200 ms of each other:
 * that chance is 12 × 0.2¹¹ − 11 × 0.2¹², about 2 × 10⁻⁷).
 */
import { afterAll, beforeAll, expect, it, vi } from "vitest";
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
  // Every draw near its top: a jitter left in place would hold each answer about 10,140 ms; the
  // bound of 5,000 leaves a loaded machine seconds (a jitter of 1 s against a bound of 900 ms left
  // 750 ms).
  const random = vi.spyOn(Math, "random").mockReturnValue(0.999);
  try {
    provider.setFirstByteDelay(0, 10_000);
    provider.setFirstByteDelay(150);
    const times = await Promise.all(Array.from({ length: 4 }, (_, i) => firstByte(`steady-${i}`)));
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(149);
      expect(t).toBeLessThan(5_000);
    }
  } finally {
    random.mockRestore();
    provider.setFirstByteDelay(0);
  }
});

it("with a jitter, the delay still comes first: a draw of 0 waits the delay", async () => {
  const random = vi.spyOn(Math, "random").mockReturnValue(0);
  try {
    provider.setFirstByteDelay(150, 1_000);
    const times = await Promise.all(Array.from({ length: 4 }, (_, i) => firstByte(`floor-${i}`)));
    for (const t of times) expect(t).toBeGreaterThanOrEqual(149);
  } finally {
    random.mockRestore();
    provider.setFirstByteDelay(0);
  }
});

it("refuses a negative or non-finite jitter, naming it", async () => {
  expect(() => provider.setFirstByteDelay(10, -1)).toThrow(/firstByteJitterMs must be ≥ 0, got -1/);
  expect(() => provider.setFirstByteDelay(10, Number.NaN)).toThrow(/firstByteJitterMs/);
  await expect(startFakeProvider({ firstByteJitterMs: Number.POSITIVE_INFINITY })).rejects.toThrow(
    /firstByteJitterMs must be ≥ 0, got Infinity/,
  );
});

it("refuses a delay plus jitter over 2^31 - 1 ms, which Node's timers would fire after 1 ms", async () => {
  expect(() => provider.setFirstByteDelay(2 ** 31, 0)).toThrow(/firstByteDelayMs/);
  expect(() => provider.setFirstByteDelay(2 ** 30, 2 ** 30)).toThrow(
    /firstByteDelayMs \+ firstByteJitterMs must be ≤ 2147483647/,
  );
  await expect(startFakeProvider({ firstByteDelayMs: 1, firstByteJitterMs: 2 ** 31 - 1 })).rejects.toThrow(
    /firstByteDelayMs \+ firstByteJitterMs must be ≤ 2147483647/,
  );
  provider.setFirstByteDelay(2 ** 31 - 2, 1); // the longest: accepted
  provider.setFirstByteDelay(0);
});
