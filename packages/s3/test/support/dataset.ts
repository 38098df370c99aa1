import { MemoryRatedRecordStore, type RatedUsageRecord } from "@latch/core";
import { makeCorrection, makeRatedRecord, uniqueId } from "@latch/testkit";

/**
 * A memory store holding a realistic month slice: `events` first versions spread over three
 * tenants, two currencies and `days` (default five) UTC days (so batches span day partitions), then a
 * correction of every seventh event, written later (so most corrections land in a later batch
 * than the version they supersede).
 */
export async function seedStore(
  events: number,
  store = new MemoryRatedRecordStore(),
  options: { runId?: string; days?: number } = {},
) {
  const run = options.runId ?? uniqueId("run");
  const days = options.days ?? 5;
  const firsts: RatedUsageRecord[] = [];
  for (let i = 0; i < events; i++) {
    const day = 1 + (i % days);
    const second = String(i % 60).padStart(2, "0");
    const at = `2026-03-0${day}T1${i % 10}:0${i % 6}:${second}.${String(i % 1000).padStart(3, "0")}Z`;
    firsts.push(
      makeRatedRecord({
        currency: i % 4 === 0 ? "EUR" : "USD",
        observation: {
          eventId: `${run}-${i}:0:openai`,
          subject: { tenantId: `tenant-${i % 3}`, projectId: "p-1" },
          timing: { startedAt: at, completedAt: at },
          meters: { input_tokens: 100 + ((i * 7919) % 50_000), output_tokens: 10 + ((i * 104_729) % 4_000) },
          // Every other call labelled as the example gateway does (the provider's response id).
          ...(i % 2 === 0
            ? { attributes: { provider_response_id: `chatcmpl-${i}`, team: `team-${i % 3}` } }
            : {}),
        },
      }),
    );
  }
  await putAll(store, firsts);
  const corrections = firsts
    .filter((_, i) => i % 7 === 3)
    .map((r, j) => makeCorrection(r, { input_tokens: 50 + j, output_tokens: 5 + (j % 11) }));
  await putAll(store, corrections);
  return { store, versions: firsts.length + corrections.length, records: [...firsts, ...corrections] };
}

export async function putAll(
  store: MemoryRatedRecordStore,
  records: readonly RatedUsageRecord[],
): Promise<void> {
  for (let i = 0; i < records.length; i += 1_000) await store.putMany(records.slice(i, i + 1_000));
}

/** The store's current totals per currency (its own report over every current version). */
export async function storeTotals(store: MemoryRatedRecordStore): Promise<Map<string, string>> {
  const [row] = await store.summary({
    start: "2000-01-01T00:00:00Z",
    end: "2100-01-01T00:00:00Z",
    groupBy: [],
  });
  return new Map(Object.entries(row?.costByCurrency ?? {}));
}

/** Every change-log entry of the store, paging through `listSince`. */
export async function allEntries(store: MemoryRatedRecordStore) {
  const entries = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.listSince(cursor, 10_000);
    if (page.items.length === 0) return entries;
    entries.push(...page.items);
    cursor = page.cursor;
  }
}
