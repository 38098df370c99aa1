import type { RatedUsageRecord } from "@latch/core";
import type { ChangeLogEntry, RatedRecordStore } from "@latch/core/adapter";
import { makeRatedRecord } from "./fixtures.js";

/** The change-log part of a store that an exporter reads. */
export type SyntheticChangeLog = Pick<RatedRecordStore, "listSince" | "getCursor" | "saveCursor" | "get"> & {
  /** Exact per-currency totals of every version, as decimal strings. */
  totals(): Record<string, string>;
};

const MICROS = 1_000_000n;

/**
 * A change log of `rows` first versions that holds nothing in memory: version `seq` (1-based)
 * is built from one rated template when `listSince` reaches it, so a large export's memory
 * is the exporter's alone. Deterministic: tenant `seq mod 50`, every 4th row EUR (else USD),
 * total `(seq mod 997 + 1)` millionths, meters and timestamps varying with `seq` (a minute
 * per 1,000 rows from 2026-03-01). Cursors are kept in memory.
 *
 * @example
 * const log = syntheticChangeLog(1_000_000);
 * await exporter.exportSince(log, { cursorName: "billing" });
 * log.totals(); // { USD: "…", EUR: "…" }
 */
export function syntheticChangeLog(rows: number): SyntheticChangeLog {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError("rows must be a safe integer ≥ 0");
  const template = makeRatedRecord();
  const cursors = new Map<string, string>();
  const currencyOf = (seq: number) => (seq % 4 === 0 ? "EUR" : "USD");
  const microsOf = (seq: number) => (seq % 997) + 1;

  const recordAt = (seq: number): RatedUsageRecord => {
    const eventId = `syn-${seq}:0:openai`;
    const at = new Date(
      Date.UTC(2026, 2, 1) + Math.floor(seq / 1_000) * 60_000 + (seq % 1_000) * 50,
    ).toISOString();
    return {
      ...template,
      ratedRecordId: `${eventId}:v1`,
      eventId,
      currency: currencyOf(seq),
      total: `0.${String(microsOf(seq)).padStart(6, "0")}`,
      observation: {
        ...template.observation,
        eventId,
        subject: { tenantId: `tenant-${seq % 50}`, projectId: `project-${seq % 7}` },
        timing: { startedAt: at, completedAt: at },
        meters: {
          input_tokens: 1_000 + ((seq * 7_919) % 50_000),
          output_tokens: 100 + ((seq * 104_729) % 4_000),
        },
      },
    };
  };

  return {
    async listSince(cursor, limit) {
      const from = cursor === undefined ? 1 : Number(cursor) + 1;
      const to = Math.min(rows, from + limit - 1);
      const items: ChangeLogEntry[] = [];
      for (let seq = from; seq <= to; seq++) items.push({ seq: String(seq), record: recordAt(seq) });
      return items.length > 0 ? { items, cursor: String(to) } : { items, cursor };
    },
    async getCursor(name) {
      return cursors.get(name);
    },
    async saveCursor(name, cursor) {
      cursors.set(name, cursor);
    },
    async get(ratedRecordId) {
      const m = /^syn-(\d+):0:openai:v1$/.exec(ratedRecordId);
      const seq = m === null ? 0 : Number(m[1]);
      return seq >= 1 && seq <= rows ? recordAt(seq) : undefined;
    },
    totals() {
      const sums = new Map<string, bigint>();
      for (let seq = 1; seq <= rows; seq++) {
        const c = currencyOf(seq);
        sums.set(c, (sums.get(c) ?? 0n) + BigInt(microsOf(seq)));
      }
      const out: Record<string, string> = {};
      for (const [c, m] of sums) out[c] = `${m / MICROS}.${String(m % MICROS).padStart(6, "0")}`;
      return out;
    },
  };
}
