// A credit ledger, its grants, balances and history as the credit routes answer them (snake_case).
import type { CreditBalance, CreditGrant, CreditHistoryEntry, CreditLedgerInfo } from "@latch/core/adapter";
import type { z } from "zod";
import type { BalanceView, GrantView, HistoryEntryView, LedgerView } from "./credit-schemas.js";
import { subjectWire } from "./subject.js";

export function ledgerView(ledger: CreditLedgerInfo): z.output<typeof LedgerView> {
  return {
    ledger_id: ledger.ledgerId,
    subject: subjectWire(ledger.subject) as z.output<typeof LedgerView>["subject"],
    time_zone: ledger.timeZone,
    ...(ledger.metadata === undefined ? {} : { metadata: ledger.metadata }),
  };
}

export function grantView(grant: CreditGrant): z.output<typeof GrantView> {
  return {
    grant_id: grant.grantId,
    ledger_id: grant.ledgerId,
    feature_id: grant.featureId,
    amount: grant.amount,
    priority: grant.priority,
    effective_at: grant.effectiveAt,
    ...(grant.expiration === undefined ? {} : { expiration: grant.expiration }),
    ...(grant.rollover === undefined
      ? {}
      : {
          rollover: {
            type: grant.rollover.type,
            ...(grant.rollover.maxAmount === undefined ? {} : { max_amount: grant.rollover.maxAmount }),
          },
        }),
    ...(grant.metadata === undefined ? {} : { metadata: grant.metadata }),
    ...(grant.expiresAt === undefined ? {} : { expires_at: grant.expiresAt }),
    sequence: grant.sequence,
    ...(grant.voidedAt === undefined ? {} : { voided_at: grant.voidedAt }),
  };
}

export function balanceView(balance: CreditBalance): z.output<typeof BalanceView> {
  return {
    ledger_id: balance.ledgerId,
    at: balance.at,
    features: balance.features.map((f) => ({
      feature_id: f.featureId,
      balance: f.balance,
      granted: f.granted,
      burned: f.burned,
      expired: f.expired,
      voided: f.voided,
      usage: f.usage,
      overage: f.overage,
    })),
    grants: balance.grants.map((g) => ({
      grant_id: g.grantId,
      feature_id: g.featureId,
      priority: g.priority,
      effective_at: g.effectiveAt,
      ...(g.expiresAt === undefined ? {} : { expires_at: g.expiresAt }),
      ...(g.voidedAt === undefined ? {} : { voided_at: g.voidedAt }),
      active: g.active,
      granted: g.granted,
      balance: g.balance,
      burned: g.burned,
      expired: g.expired,
      voided: g.voided,
    })),
  };
}

export function entryView(entry: CreditHistoryEntry): z.output<typeof HistoryEntryView> {
  switch (entry.type) {
    case "RESET":
      return {
        type: "RESET",
        at: entry.at,
        grants: entry.grants.map((g) => ({
          grant_id: g.grantId,
          feature_id: g.featureId,
          before: g.before,
          after: g.after,
        })),
      };
    case "GRANT_USAGE":
      return {
        type: "GRANT_USAGE",
        at: entry.at,
        grant_id: entry.grantId,
        feature_id: entry.featureId,
        amount: entry.amount,
        period: entry.period,
      };
    default:
      return {
        type: entry.type,
        at: entry.at,
        grant_id: entry.grantId,
        feature_id: entry.featureId,
        amount: entry.amount,
      };
  }
}
