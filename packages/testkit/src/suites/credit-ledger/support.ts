import { sumDecimals } from "@latch/core";
import type { CreditBalance } from "@latch/core/adapter";
import { expect } from "vitest";

/** `2026-MM-DD` (and an optional `THH:mm`) as an ISO UTC timestamp. */
export const t = (day: string, time = "00:00") => `2026-${day}T${time}:00Z`;
/** The same instant as the ledger returns it. */
export const out = (day: string, time = "00:00") => `2026-${day}T${time}:00.000Z`;

/** One grant's numbers from a balance. */
export function grantOf(balance: CreditBalance, grantId: string) {
  const g = balance.grants.find((x) => x.grantId === grantId);
  if (g === undefined) expect.fail(`grant ${grantId} missing from the balance`);
  return {
    granted: g.granted,
    balance: g.balance,
    burned: g.burned,
    expired: g.expired,
    voided: g.voided,
  };
}

export function featureOf(balance: CreditBalance, featureId: string) {
  const f = balance.features.find((x) => x.featureId === featureId);
  if (f === undefined) expect.fail(`feature ${featureId} missing from the balance`);
  return f;
}

/**
 * Asserts granted = balance + burned + expired + voided, all ≥ 0, per grant and per feature,
 * and usage = burned + overage per feature; overage ≥ 0 unless `refunds` (a money feature's
 * refund larger than everything before it is owed back as negative overage).
 */
export function expectConserved(balance: CreditBalance, { refunds = false } = {}): void {
  for (const g of [...balance.grants, ...balance.features]) {
    for (const v of [g.granted, g.balance, g.burned, g.expired, g.voided])
      expect(v.startsWith("-")).toBe(false);
    expect(sumDecimals([g.balance, g.burned, g.expired, g.voided])).toBe(g.granted);
  }
  for (const f of balance.features) {
    const grants = balance.grants.filter((g) => g.featureId === f.featureId);
    expect(sumDecimals(grants.map((g) => g.granted))).toBe(f.granted);
    expect(sumDecimals(grants.map((g) => g.balance))).toBe(f.balance);
    expect(sumDecimals([f.burned, f.overage])).toBe(f.usage);
    if (!refunds) expect(f.overage.startsWith("-")).toBe(false);
  }
}
