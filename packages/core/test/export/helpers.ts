import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { ChangeLogEntry } from "../../src/contracts/rated-record-store.js";
import type { RatedUsageRecord, UsageObservation } from "../../src/index.js";

export interface RecordSpec {
  requestId?: string;
  version?: number;
  total: string;
  currency?: string;
  completedAt?: string;
  ratedAt?: string;
  meters?: UsageObservation["meters"];
  observation?: Partial<UsageObservation>;
}

/** A rated record for `<requestId>:0:openai`, version n superseding v(n-1). */
export function rec(spec: RecordSpec): RatedUsageRecord {
  const eventId = `${spec.requestId ?? "req-1"}:0:openai`;
  const version = spec.version ?? 1;
  const completedAt = spec.completedAt ?? "2026-03-01T12:00:01Z";
  const observation: UsageObservation = {
    eventId,
    subject: { tenantId: "acme" },
    meters: spec.meters ?? { input_tokens: 1000, output_tokens: 100 },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
    source: version === 1 ? { kind: "provider_reported" } : { kind: "corrected", correctionOf: eventId },
    outcome: { kind: "success" },
    timing: { startedAt: completedAt, completedAt },
    ...spec.observation,
  };
  const base = {
    ratedRecordId: `${eventId}:v${version}`,
    eventId,
    version,
    snapshotId: "snap-1",
    currency: spec.currency ?? "USD",
    lineItems: [],
    total: spec.total,
    ratedAt: spec.ratedAt ?? "2026-03-01T12:00:05Z",
    observation,
  };
  return version === 1 ? base : { ...base, supersedes: `${eventId}:v${version - 1}` };
}

export function entry(seq: number | string, record: RatedUsageRecord): ChangeLogEntry {
  return { seq: String(seq), record };
}

/** Every file under `root` (relative, `/`-separated) with its bytes, sorted by path. */
export async function listFiles(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  async function walk(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const full = path.join(dir, name);
      const stat = await fsp.stat(full);
      if (stat.isDirectory()) await walk(full);
      else out.set(path.relative(root, full).split(path.sep).join("/"), await fsp.readFile(full));
    }
  }
  await walk(root);
  return out;
}

/**
 * A minimal change log over an array: cursor = index of the next entry as a decimal string.
 * listSince/getCursor/saveCursor only (the real memory store lives elsewhere).
 */
export class ArrayChangeLog {
  readonly log: ChangeLogEntry[] = [];
  readonly cursors = new Map<string, string>();
  saves = 0;

  append(...records: RatedUsageRecord[]): void {
    for (const record of records) this.log.push({ seq: String(this.log.length + 1), record });
  }

  async listSince(
    cursor: string | undefined,
    limit: number,
  ): Promise<{ items: ChangeLogEntry[]; cursor: string | undefined }> {
    const start = cursor === undefined ? 0 : Number(cursor);
    const items = this.log.slice(start, start + limit);
    return { items, cursor: items.length === 0 ? cursor : String(start + items.length) };
  }

  async getCursor(name: string): Promise<string | undefined> {
    return this.cursors.get(name);
  }

  async saveCursor(name: string, cursor: string): Promise<void> {
    this.saves++;
    const old = this.cursors.get(name);
    if (old === undefined || Number(cursor) > Number(old)) this.cursors.set(name, cursor);
  }

  /** Any stored version by ratedRecordId (what the contract's proposed `get` would do). */
  async get(ratedRecordId: string): Promise<RatedUsageRecord | undefined> {
    return this.log.find((e) => e.record.ratedRecordId === ratedRecordId)?.record;
  }

  async current(eventId: string): Promise<RatedUsageRecord | undefined> {
    let best: RatedUsageRecord | undefined;
    for (const { record } of this.log) {
      if (record.eventId === eventId && (best === undefined || record.version > best.version)) best = record;
    }
    return best;
  }
}
