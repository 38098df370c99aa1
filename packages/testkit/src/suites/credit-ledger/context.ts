import type { CreditGrantInput, CreditLedger, CreditUsageInput } from "@latch/core/adapter";

/** The ledger under test and this test's fresh ids, set by the suite before every test. */
export interface CreditLedgerTest {
  /** From the suite's `create()`. */
  credits: CreditLedger;
  /** A fresh ledger of a fresh tenant, created on `credits`. */
  ledgerId: string;
  /** A fresh quantity feature (input and output tokens), created on `credits`. */
  featureId: string;
}

/** What the credit ledger suite hands each of its parts (one file per describe block). */
export interface CreditLedgerParts {
  /** The running test's ledger and ids: read it in a hook or a test, never while registering. */
  current(): CreditLedgerTest;
  /** A grant of this test's ledger and feature, effective 2026-01-01; ids are made unique per test. */
  grant(id: string, amount: string, fields?: Partial<CreditGrantInput>): ReturnType<CreditLedger["grant"]>;
  /** The stored id of the grant `grant(id, …)` made. */
  gid(id: string): string;
  /** Records usage of this test's ledger and feature. */
  use(
    eventId: string,
    amount: string,
    at: string,
    fields?: Partial<CreditUsageInput>,
  ): ReturnType<CreditLedger["recordUsage"]>;
  /** Runs of each fast-check property (at least 5). */
  runs: number;
}
