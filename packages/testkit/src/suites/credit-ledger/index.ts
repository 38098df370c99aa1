import type { CreditGrantInput, CreditLedger, CreditUsageInput } from "@latch/core/adapter";
import { beforeEach, describe } from "vitest";
import { uniqueId } from "../../fixtures.js";
import {
  type ConformanceSuite,
  type DescribeOptions,
  describeSuite,
  type SuiteOptions,
} from "../../suite.js";
import { creditRetentionCases, type HoldRetentionOptions } from "../hold-retention.js";
import { creditLedgerStringCases } from "../strings.js";
import { badInputCases } from "./bad-input.js";
import { concurrencyCases } from "./concurrency.js";
import type { CreditLedgerParts } from "./context.js";
import { correctionCases } from "./corrections.js";
import { expirationCalendarCases } from "./expiration-calendar.js";
import { goldenScenarioCases } from "./golden.js";
import { historyCases } from "./history.js";
import { holdCases } from "./holds.js";
import { idempotencyCases } from "./idempotency.js";
import { listingCases } from "./listing.js";
import { propertyCases } from "./properties.js";
import { refundCases } from "./refunds.js";
import { type SnapshotLedgerFactory, snapshotCases } from "./snapshots.js";
import { t } from "./support.js";

export interface CreditLedgerSuiteOptions extends SuiteOptions<CreditLedger> {
  /**
   * Runs of each fast-check property (default 40). Every property always runs; a slow backend
   * may run fewer cases, never none (values below 5 are raised to 5).
   */
  propertyRuns?: number;
  /**
   * A ledger with a given `holdRetentionMs` and a reader of its hold records: the suite then
   * checks that resolved holds are purged after the retention and that storage stays bounded
   * over many reserve/commit and reserve/void cycles.
   */
  retention?: HoldRetentionOptions<CreditLedger>;
  /**
   * A ledger that takes a balance snapshot every `every` usage events (e.g. the backend's
   * `snapshotEvery` option) and, when `thinning` is given, thins old snapshots that way
   * (`snapshotThinning`), so that the snapshot cases cross many snapshot and thinning
   * boundaries. Without it they run on `create()` (and cross only the boundaries its defaults
   * give).
   */
  snapshots?: SnapshotLedgerFactory;
}

/**
 * The `CreditLedger` contract as a vitest suite: golden burn-down scenarios with hand-computed
 * balances (priority, expiry and creation order, expiry mid-period, rollover of the remaining
 * and of the original amount, void, reset and the high watermark, usage equal to the balance
 * and one unit more), history, listing ledgers by subject (filters, code-point order, keyset
 * pages, bad cursors), idempotency and conflicts, calendar expirations, bad input, and
 * fast-check properties (conservation, no negative balance, order independence), 1,000
 * concurrent burns, versioned usage (corrections), refunds (negative usage of a money feature:
 * LIFO, after an expiry, a void or a reset, owed back, a volume tier's reversal; quantity
 * features refuse them), balance snapshots (late usage, corrections, voids, resets and grants
 * dated before a snapshot, and across thinned-out snapshots, each compared with a replay from
 * scratch), and holds: reserve against remaining
 * credits, commit the actual burn, void, idempotency by holdId, expiry by the store's clock (real
 * time: a 50 ms hold, then a 150 ms wait) and concurrent reserves that never oversubscribe. Every
 * test always runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [creditLedgerSuite({ create: () => new MemoryCreditLedger() })],
 * });
 */
export function creditLedgerSuite(options: CreditLedgerSuiteOptions): ConformanceSuite {
  return { name: "CreditLedger", register: (title) => creditLedgerTests(title, options) };
}

/**
 * `creditLedgerSuite` registered on its own, titled `CreditLedger: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [creditLedgerSuite(options)] })`.
 */
export function describeCreditLedger(options: CreditLedgerSuiteOptions & DescribeOptions): void {
  describeSuite(creditLedgerSuite(options), options);
}

function creditLedgerTests(title: string, options: CreditLedgerSuiteOptions): void {
  const runs = Math.max(5, options.propertyRuns ?? 40);

  describe(title, () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;

    beforeEach(async () => {
      credits = await options.create();
      ledgerId = uniqueId("ledger");
      featureId = uniqueId("tokens");
      await credits.createFeature({
        featureId,
        measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
      });
      await credits.createLedger({ ledgerId, subject: { tenantId: uniqueId("tenant") } });
    });

    creditLedgerStringCases({ credits: () => credits });

    const parts: CreditLedgerParts = {
      current: () => ({ credits, ledgerId, featureId }),
      grant: (id: string, amount: string, fields: Partial<CreditGrantInput> = {}) =>
        credits.grant({
          grantId: `${ledgerId}:${id}`,
          ledgerId,
          featureId,
          amount,
          effectiveAt: t("01-01"),
          ...fields,
        }),
      gid: (id: string) => `${ledgerId}:${id}`,
      use: (eventId: string, amount: string, at: string, fields: Partial<CreditUsageInput> = {}) =>
        credits.recordUsage({ ledgerId, featureId, eventId, amount, at, ...fields }),
      runs,
    };

    goldenScenarioCases(parts);
    refundCases(parts);
    expirationCalendarCases(parts);
    idempotencyCases(parts);
    historyCases(parts);
    listingCases(parts);
    badInputCases(parts);
    correctionCases(parts);
    holdCases(parts);
    propertyCases(parts);
    concurrencyCases(parts);
    snapshotCases(options.snapshots ?? (() => options.create()), runs);
  });
  if (options.retention !== undefined) creditRetentionCases(title, options.retention);
}
