/**
 * An ObservationStore on a directory, shared by the processes of a test: one file per event,
 * published with link(2) (atomic, fails if the event exists), so a concurrent append of the same
 * event by another process sees either nothing or the whole record. It can fail a random
 * fraction of appends, before writing (the store is down) or after (the answer is lost).
 */
import { randomUUID } from "node:crypto";
import { appendFile, link, mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type AppendResult, type ObservationStore, observationHash } from "../../../src/adapter.js";
import { IdempotencyConflictError } from "../../../src/errors/index.js";
import { parseObservation, type UsageObservation } from "../../../src/index.js";

export interface StoreFaults {
  /** Fraction of appends that fail before writing anything. */
  before: number;
  /** Fraction of appends that write, then fail (a lost answer: the retry finds it stored). */
  after: number;
}

/** What `inserts.log` says: who stored each event (one line per `appended`). */
export async function readInserts(dir: string): Promise<Array<{ eventId: string; actor: string }>> {
  const text = await readFile(join(dir, "inserts.log"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const [eventId, actor] = l.split(" ");
      return { eventId: eventId as string, actor: actor as string };
    });
}

export class FileObservationStore implements ObservationStore {
  readonly #ready: Promise<unknown>;

  constructor(
    readonly dir: string,
    /** Written next to each event this instance inserts (inserts.log). */
    readonly actor: string,
    readonly faults: StoreFaults = { before: 0, after: 0 },
    readonly random: () => number = Math.random,
  ) {
    this.#ready = Promise.all(
      ["events", "tmp", "priced"].map((d) => mkdir(join(dir, d), { recursive: true })),
    );
  }

  #event(eventId: string): string {
    return join(this.dir, "events", `${encodeURIComponent(eventId)}.json`);
  }

  async append(input: UsageObservation): Promise<AppendResult> {
    await this.#ready;
    const observation = parseObservation(input);
    if (this.random() < this.faults.before) throw storeDown();
    const hash = observationHash(observation);
    const tmp = join(this.dir, "tmp", randomUUID());
    await writeFile(tmp, JSON.stringify({ hash, observation }));
    let result: AppendResult;
    try {
      await link(tmp, this.#event(observation.eventId));
      await appendFile(join(this.dir, "inserts.log"), `${observation.eventId} ${this.actor}\n`);
      result = "appended";
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const existing = JSON.parse(await readFile(this.#event(observation.eventId), "utf8")) as {
        hash: string;
      };
      if (existing.hash !== hash)
        throw new IdempotencyConflictError({
          id: observation.eventId,
          existingHash: existing.hash,
          incomingHash: hash,
        });
      result = "already_exists";
    } finally {
      await unlink(tmp);
    }
    if (this.random() < this.faults.after) throw storeDown();
    return result;
  }

  /** Appends one by one after checking the whole batch for conflicts (enough for one writer). */
  async appendMany(observations: readonly UsageObservation[]): Promise<AppendResult[]> {
    for (const o of observations) {
      const stored = await this.get(o.eventId);
      const hash = observationHash(parseObservation(o));
      if (stored !== undefined && observationHash(stored) !== hash)
        throw new IdempotencyConflictError({
          id: o.eventId,
          existingHash: observationHash(stored),
          incomingHash: hash,
        });
    }
    const results: AppendResult[] = [];
    for (const o of observations) results.push(await this.append(o));
    return results;
  }

  async get(eventId: string): Promise<UsageObservation | undefined> {
    try {
      const { observation } = JSON.parse(await readFile(this.#event(eventId), "utf8")) as {
        observation: unknown;
      };
      return parseObservation(observation);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** Every stored event id, sorted. */
  async eventIds(): Promise<string[]> {
    await this.#ready;
    return (await readdir(join(this.dir, "events")))
      .map((f) => decodeURIComponent(f.slice(0, -".json".length)))
      .sort();
  }

  async listUnpriced(options: {
    after?: string;
    limit: number;
  }): Promise<{ items: UsageObservation[]; next?: string }> {
    const priced = new Set(await readdir(join(this.dir, "priced")));
    const ids = (await this.eventIds()).filter(
      (id) => !priced.has(encodeURIComponent(id)) && (options.after === undefined || id > options.after),
    );
    const page = ids.slice(0, options.limit);
    const items: UsageObservation[] = [];
    for (const id of page) items.push((await this.get(id)) as UsageObservation);
    return ids.length > page.length ? { items, next: page.at(-1) as string } : { items };
  }

  async markPriced(eventIds: readonly string[]): Promise<void> {
    await this.#ready;
    for (const id of eventIds) await writeFile(join(this.dir, "priced", encodeURIComponent(id)), "");
  }
}

function storeDown(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
}
