/**
 * `GroupCommit`'s batching, without a database: a batch that leaves with nothing in flight goes
 * as two transactions, every entry of one key in the same one and in arrival order.
 */
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../src/group-commit.js";

interface Entry {
  key: string;
  n: number;
}

function recorder() {
  const batches: Entry[][] = [];
  const release: Array<() => void> = [];
  const gc = new GroupCommit<Entry>(
    { maxWaitMs: 1_000, maxBatch: 64 },
    (batch) => {
      batches.push(batch);
      return new Promise<void>((resolve) => release.push(resolve));
    },
    (e) => e.key,
  );
  return { gc, batches, release };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("group commit batches", () => {
  it("splits a batch sent with nothing in flight in two, keeping each key's entries together and in order", async () => {
    const { gc, batches, release } = recorder();
    const keys = [
      "a",
      "b",
      "c",
      "d",
      "e",
      "f",
      "g",
      "h",
      "i",
      "j",
      "k",
      "l",
      "m",
      "n",
      "o",
      "p",
      "a",
      "c",
      "a",
      "p",
    ];
    for (const [n, key] of keys.entries()) gc.add({ key, n });
    await tick();
    expect(batches).toHaveLength(2);
    const [first, second] = batches as [Entry[], Entry[]];
    expect(first.length + second.length).toBe(keys.length);
    for (const key of new Set(keys)) {
      const inFirst = first.filter((e) => e.key === key).map((e) => e.n);
      const inSecond = second.filter((e) => e.key === key).map((e) => e.n);
      expect(inFirst.length === 0 || inSecond.length === 0, `key ${key} in one half`).toBe(true);
      const ns = [...inFirst, ...inSecond];
      expect(ns).toEqual([...ns].sort((x, y) => x - y));
    }
    for (const r of release) r();
  });

  it("sends a small batch whole, and a batch gathered while others are in flight whole", async () => {
    const { gc, batches, release } = recorder();
    for (let n = 0; n < 15; n++) gc.add({ key: `k${n}`, n });
    await tick();
    expect(batches.map((b) => b.length)).toEqual([15]);
    // In flight now: the next 64 fill a batch, which leaves at once and whole.
    for (let n = 0; n < 64; n++) gc.add({ key: `m${n}`, n });
    expect(batches.map((b) => b.length)).toEqual([15, 64]);
    for (const r of release) r();
  });

  it("a batch of one key is not split", async () => {
    const { gc, batches, release } = recorder();
    for (let n = 0; n < 20; n++) gc.add({ key: "same", n });
    await tick();
    expect(batches.map((b) => b.length)).toEqual([20]);
    for (const r of release) r();
  });
});
