import { describe, expect, it } from "vitest";
import { Deadlines } from "../src/client.js";

const never = () => new Promise<never>(() => undefined);
const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe("Deadlines (one timer for every pending operation)", () => {
  it("passes values and errors through, and forgets settled operations", async () => {
    const deadlines = new Deadlines(1_000);
    expect(await deadlines.run(Promise.resolve(1))).toBe(1);
    await expect(deadlines.run(Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(
      await Promise.all(Array.from({ length: 5_000 }, (_, i) => deadlines.run(later(i % 7, i)))),
    ).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(deadlines.pending).toBe(0);
  });

  it("rejects each operation that does not settle once its own timeout has passed, not before", async () => {
    const deadlines = new Deadlines(100);
    const started = performance.now();
    const first = deadlines
      .run(never())
      .catch((error: Error) => ({ error, at: performance.now() - started }));
    await later(40, undefined);
    const second = deadlines
      .run(never())
      .catch((error: Error) => ({ error, at: performance.now() - started }));
    const quick = deadlines.run(later(10, "quick"));
    expect(await quick).toBe("quick");
    const [a, b] = await Promise.all([first, second]);
    expect(a.error.message).toMatch(/no answer from Redis within 100 ms/);
    expect(a.at).toBeGreaterThanOrEqual(99);
    expect(a.at).toBeLessThan(5_000); // generous: a loaded machine fires timers late
    expect(b.at).toBeGreaterThanOrEqual(139);
    expect(b.at).toBeLessThan(5_040);
    expect(deadlines.pending).toBe(0);
    // Works again after going idle.
    await expect(deadlines.run(never())).rejects.toThrow(/within 100 ms/);
    expect(await deadlines.run(later(5, "again"))).toBe("again");
  });

  it("rejects a stuck operation on time even while many others settle around it", async () => {
    const deadlines = new Deadlines(150);
    const stuck = deadlines.run(never()).then(
      () => "resolved",
      () => "rejected",
    );
    // Settled either way: on a loaded machine some of these pass their 150 ms too (no
    // sub-second timing is asserted); what matters is that the stuck one is rejected.
    const busy = Promise.allSettled(
      Array.from({ length: 20_000 }, (_, i) => deadlines.run(later(i % 50, i))),
    );
    // Within seconds, not ms: a loaded CI machine delays timers; a deadline that never fired
    // (the bug this guards) would answer "late".
    expect(await Promise.race([stuck, later(10_000, "late")])).toBe("rejected");
    expect((await busy).length).toBe(20_000);
    expect(deadlines.pending).toBe(0);
  });

  it("settles a rejection, the timeout's too, as onRejected's value or what it throws", async () => {
    const deadlines = new Deadlines(100);
    expect(await deadlines.run(Promise.resolve("value"), () => "mapped")).toBe("value");
    expect(
      await deadlines.run(Promise.reject(new Error("boom")), (e) => `mapped ${(e as Error).message}`),
    ).toBe("mapped boom");
    expect(await deadlines.run(never(), (e) => `mapped ${(e as Error).message}`)).toBe(
      "mapped no answer from Redis within 100 ms",
    );
    await expect(
      deadlines.run(Promise.reject(new Error("boom")), () => {
        throw new Error("thrown by onRejected");
      }),
    ).rejects.toThrow("thrown by onRejected");
    await expect(
      deadlines.run(never(), () => {
        throw new Error("timeout rethrown");
      }),
    ).rejects.toThrow("timeout rethrown");
    expect(deadlines.pending).toBe(0);
  });

  it("maps once: an operation that rejects after its timeout fired does not call onRejected again", async () => {
    const deadlines = new Deadlines(50);
    const seen: string[] = [];
    let fail: (error: Error) => void = () => undefined;
    const late = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const answer = await deadlines.run(late, (e) => {
      seen.push((e as Error).message);
      return "mapped";
    });
    expect(answer).toBe("mapped");
    fail(new Error("late rejection")); // the socket answers with an error after the deadline
    await later(20, undefined);
    expect(seen).toEqual(["no answer from Redis within 50 ms"]);
    expect(deadlines.pending).toBe(0);
  });
});
