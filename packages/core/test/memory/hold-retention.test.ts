import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryCreditLedger, MemoryQuotaReservator } from "../../src/memory/index.js";

// Hold retention on the in-memory stores with an injected clock: exact times, no waiting.
// (The testkit suites check the same rule in real time on every backend.)

describe("MemoryQuotaReservator: hold retention", () => {
  it("keeps a committed hold exactly holdRetentionMs after the commit, then a late commit is invalid_input and charges nothing", async () => {
    let now = 10_000;
    const quota = new MemoryQuotaReservator({ clock: () => now, holdRetentionMs: 1_000 });
    await quota.setLimit("acme", 100);
    await quota.reserve({ holdId: "h1", account: "acme", amount: 30, ttlMs: 60_000 });
    now = 10_500;
    expect(await quota.commit("h1", 25)).toEqual({ committed: 25 }); // resolved at 10,500
    now = 11_499;
    expect(await quota.purgeResolvedHolds()).toEqual({ purged: 0 });
    expect(await quota.commit("h1", 25)).toEqual({ committed: 25 }); // a retry within the retention
    now = 11_500;
    expect(await quota.purgeResolvedHolds()).toEqual({ purged: 1 });
    expect(quota.storedHolds).toBe(0);
    await expect(quota.commit("h1", 25)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "holdId" }],
    });
    expect(await quota.balance("acme")).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
    // The holdId is free again: a new hold.
    expect(await quota.reserve({ holdId: "h1", account: "acme", amount: 30, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 45,
    });
  });

  it("counts an unresolved hold's retention from its expiry, releasing it from an idle account, and a late commit restarts it", async () => {
    let now = 0;
    const quota = new MemoryQuotaReservator({ clock: () => now, holdRetentionMs: 1_000 });
    await quota.setLimit("idle", 10);
    await quota.setLimit("late", 10);
    await quota.reserve({ holdId: "i1", account: "idle", amount: 4, ttlMs: 500 });
    await quota.reserve({ holdId: "l1", account: "late", amount: 4, ttlMs: 500 });
    now = 1_400; // both expired at 500; "late" is committed late, at 1,400
    expect(await quota.commit("l1", 3)).toEqual({ committed: 3 });
    now = 1_499;
    expect(await quota.purgeResolvedHolds()).toEqual({ purged: 0 });
    now = 1_500; // 500 + 1,000: the idle account's hold goes (its account never saw a call)
    expect(await quota.purgeResolvedHolds()).toEqual({ purged: 1 });
    expect(await quota.balance("idle")).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
    await expect(quota.void("i1")).rejects.toMatchObject({ code: "invalid_input" });
    expect(await quota.commit("l1", 3)).toEqual({ committed: 3 }); // kept: 1,400 + 1,000 > 1,500
    now = 2_400;
    expect(await quota.purgeResolvedHolds()).toEqual({ purged: 1 });
    expect(quota.storedHolds).toBe(0);
    expect(await quota.balance("late")).toEqual({ limit: 10, spent: 3, held: 0, available: 7 });
  });

  it("purges lazily, without being asked: stored holds stay bounded over 50,000 reserve/commit cycles", async () => {
    let now = 0;
    const quota = new MemoryQuotaReservator({ clock: () => now, holdRetentionMs: 1_000 });
    await quota.setLimit("acme", 50_000);
    let most = 0;
    for (let i = 0; i < 50_000; i++) {
      now += 1; // 1,000 cycles per retention
      await quota.reserve({ holdId: `h${i}`, account: "acme", amount: 1, ttlMs: 60_000 });
      await quota.commit(`h${i}`, 1);
      most = Math.max(most, quota.storedHolds);
    }
    // At most the retention's 1,000 cycles plus one pass interval (max(1,000, size / 2)).
    expect(most).toBeLessThanOrEqual(2_500);
    expect(await quota.balance("acme")).toEqual({ limit: 50_000, spent: 50_000, held: 0, available: 0 });
  });

  it("purges a hold exactly when its retention has passed, never before, whatever the order of calls (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ gap: fc.integer({ min: 0, max: 400 }), op: fc.constantFrom("commit", "void", "wait") }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        async (steps) => {
          let now = 0;
          const retention = 1_000;
          const quota = new MemoryQuotaReservator({ clock: () => now, holdRetentionMs: retention });
          await quota.setLimit("a", 1_000);
          const resolvedAt = new Map<string, number>();
          for (const [i, step] of steps.entries()) {
            now += step.gap;
            const holdId = `h${i}`;
            await quota.reserve({ holdId, account: "a", amount: 1, ttlMs: 300 });
            if (step.op === "commit") await quota.commit(holdId, 1);
            if (step.op === "void") await quota.void(holdId);
            resolvedAt.set(holdId, step.op === "wait" ? now + 300 : now);
            await quota.purgeResolvedHolds();
            for (const [id, at] of resolvedAt) {
              if (now >= at + retention) {
                // Due and purged: unknown.
                await expect(quota.void(id), `${id} at ${now}`).rejects.toMatchObject({
                  code: "invalid_input",
                });
                resolvedAt.delete(id);
                continue;
              }
              // Within its retention a hold is known: a reserve of its id with another amount is
              // a conflict (a probe that changes nothing), never a new hold.
              const probe = quota.reserve({ holdId: id, account: "a", amount: 2, ttlMs: 300 });
              await expect(probe, `${id} at ${now}`).rejects.toMatchObject({ code: "idempotency_conflict" });
            }
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("MemoryCreditLedger: hold retention", () => {
  it("keeps a resolved hold exactly holdRetentionMs, then a late commit is invalid_input and burns nothing", async () => {
    let now = Date.parse("2026-03-01T00:00:00Z");
    const start = now;
    const credits = new MemoryCreditLedger({ clock: () => now, holdRetentionMs: 1_000 });
    await credits.createFeature({
      featureId: "tokens",
      measure: { kind: "quantity", meters: ["input_tokens"] },
    });
    await credits.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
    await credits.grant({
      grantId: "g",
      ledgerId: "acme",
      featureId: "tokens",
      amount: "100",
      effectiveAt: "2026-01-01T00:00:00Z",
    });
    const reserve = (holdId: string, ttlMs = 60_000) =>
      credits.reserve({ holdId, ledgerId: "acme", featureId: "tokens", amount: "10", ttlMs });
    const commit = (holdId: string) =>
      credits.commitHold({ holdId, eventId: "call-1", amount: "7", at: "2026-03-01T00:00:00Z" });
    await reserve("c");
    await reserve("v");
    await reserve("e", 200); // expires unresolved at start + 200
    now = start + 100;
    await commit("c");
    await credits.voidHold("v");
    now = start + 1_099;
    expect(await credits.purgeResolvedHolds()).toEqual({ purged: 0 });
    now = start + 1_100; // c and v (resolved at +100); e resolved at +200
    expect(await credits.purgeResolvedHolds()).toEqual({ purged: 2 });
    expect(credits.storedHolds).toBe(1);
    now = start + 1_200;
    expect(await credits.purgeResolvedHolds()).toEqual({ purged: 1 });
    await expect(commit("c")).rejects.toMatchObject({ code: "invalid_input", issues: [{ path: "holdId" }] });
    await expect(credits.voidHold("v")).rejects.toMatchObject({ code: "invalid_input" });
    const balance = await credits.balance("acme", "2026-03-02T00:00:00Z");
    expect(balance.features[0]?.balance).toBe("93"); // 100 − 7, burned once
  });

  it("rejects a bad holdRetentionMs naming it", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new MemoryCreditLedger({ holdRetentionMs: bad })).toThrow(
        expect.objectContaining({
          code: "invalid_input",
          issues: [expect.objectContaining({ path: "holdRetentionMs" })],
        }),
      );
      expect(() => new MemoryQuotaReservator({ holdRetentionMs: bad })).toThrow(
        expect.objectContaining({ code: "invalid_input" }),
      );
    }
  });
});
