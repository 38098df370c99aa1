import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { constants } from "node:fs";
import {
  copyFile,
  type FileHandle,
  mkdir,
  open,
  readdir,
  rename,
  stat,
  unlink,
  utimes,
} from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { LatchValidationError } from "../errors/index.js";

/** Format of a spool line: `{"v":1,"observation":{…}}` and a newline. */
export const SPOOL_FORMAT_VERSION = 1;

/** Longest line a drain holds in memory; `append` refuses longer ones, a drain sets them aside. */
const MAX_LINE_BYTES = 8 * 1024 * 1024;
/** Appends queued while a write is in flight go to disk together, up to this many bytes. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** Read size of a drain: its memory is this plus one line, whatever the segment's size. */
const READ_CHUNK_BYTES = 64 * 1024;
/** Opens a claim for reading: never through a symlink, never waiting for a FIFO's writer. */
const READ_NOFOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
/** Times in a row an append may find its fresh segment claimed before it gives up. */
const MAX_ROTATIONS = 8;

/** Host part of file names: a claim of a dead process on this host is taken over at once. */
const HOST =
  hostname()
    .replace(/[^A-Za-z0-9.-]/g, "-")
    .slice(0, 64) || "host";
/** Segments, claims and a drain's unpublished copies, named by an instance: kind, host, pid, token. */
const OWNED_NAME = /^(seg|claim|tmp)_([A-Za-z0-9.-]+)_(\d+)_([0-9a-f]+)_\d+\.jsonl$/;
const SEGMENT_NAME = /^seg_.+\.jsonl$/;
const KEEP_NAME = /^keep_v(\d+)_.+\.jsonl$/;

/**
 * Steps of an append and of a drain after which a crash leaves a distinct state on disk. The
 * `onStep` hook is called at each (tests freeze a spool there to simulate a kill).
 */
export type SpoolStep =
  | "append:created"
  | "append:written"
  | "append:synced"
  | "drain:claimed"
  | "drain:replayed"
  | "drain:read"
  | "drain:published"
  | "drain:unlinked";

export interface SpoolOptions {
  /** The spool directory, created on first use. A relative path is resolved once, now. */
  dir: string;
  /** A single-file spool of an earlier version (same line format), migrated by each drain. */
  legacyFile?: string;
  /** A claim with no sign of progress for this long is taken over by another drain. Default 60 s. */
  staleClaimMs?: number;
  /**
   * Another live instance's segment is claimed only once unwritten for this long, so a busy
   * appender is not made to rewrite its lines again and again. Default 500 ms.
   */
  segmentIdleMs?: number;
  /** How long a drain waits for a write in flight before it calls an unterminated last line torn. Default 50 ms. */
  tailGraceMs?: number;
  /** Called at each {@link SpoolStep}; a test hook. */
  onStep?: (step: SpoolStep) => void | Promise<void>;
}

/** Where a spooled line was: its segment's name before the drain claimed it, and its 1-based line. */
export interface SpoolLineRef {
  segment: string;
  line: number;
}

/** What a replay made of one entry: stored, or refused for good (the line is set aside). */
export type SpoolReplayOutcome = "stored" | { rejected: string; cause?: unknown };

/** A line a drain did not replay and moved out of the way, never deleted. */
export interface SpoolSetAside extends SpoolLineRef {
  reason:
    | "torn" /* an unterminated last line: a write cut by a crash */
    | "not_json"
    | "not_an_entry" /* JSON, but not a spool entry of any version (or longer than 8 MiB) */
    | "newer_version" /* written by a newer Latch: kept in keep_v<N>_… for a drain that reads it */
    | "rejected" /* the replay refused it (see `detail`) */;
  detail?: string;
  /** Why the replay refused it. */
  cause?: unknown;
  /** The file the line now lives in, relative to the spool directory. */
  movedTo: string;
}

export interface SpoolDrainReport {
  /** Segments this drain claimed (a migrated legacy file included). */
  segments: number;
  /** Entries the replay stored. */
  replayed: number;
  /** Lines moved to `rejected/` or to a `keep_v<N>_` segment. */
  setAside: number;
  /** Entries handed back to a fresh segment because the replay failed (a later drain retries them). */
  handedBack: number;
}

interface QueuedAppend {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface RawLine {
  bytes: Buffer;
  line: number;
  /** Ended by a newline (a complete write). */
  terminated: boolean;
  /** A piece of a line longer than MAX_LINE_BYTES; more pieces of the same line follow. */
  more: boolean;
}

/**
 * The local fail-open spool: observations wait here, on disk, while the store is down. Any
 * number of processes (and of `Spool` instances in one process) may share one directory.
 *
 * Layout of the directory (names carry host, pid, a random instance token and a counter, so
 * no two writers ever pick the same name):
 * - `seg_<host>_<pid>_<token>_<n>.jsonl` — a segment: one line per entry,
 *   `{"v":1,"observation":{…}}\n`. Each instance appends only to its own segment.
 * - `claim_<host>_<pid>_<token>_<n>.jsonl` — a segment a drain has claimed (renamed) and is
 *   replaying.
 * - `seg_closed-<token>-<n>.jsonl` — the segment of an instance that was closed; any drain
 *   takes it at once.
 * - `tmp_<host>_<pid>_<token>_<n>.jsonl` — a copy a drain is writing (lines handed back, or
 *   kept for a newer version), renamed to its `seg_`/`keep_` name once complete and synced. A
 *   dead drain's copy is deleted: the claim it came from still holds every line.
 * - `keep_v<N>_….jsonl` — lines of format version N written by a newer Latch, kept for a
 *   drain that reads version N (an older drain leaves them alone).
 * - `rejected/…jsonl` — lines no drain can replay (torn, not JSON, not an entry, an invalid or
 *   conflicting observation), byte for byte. Nothing deletes them; after a fix, move a file back
 *   as `seg_<anything>.jsonl` to replay it.
 *
 * Guarantees:
 * - `append` resolves only after its line, the segment file (`fdatasync`) and, for a new
 *   segment, the directory entry (`fsync` of the directory) are on disk, and after it has seen
 *   that the segment still has its name. A drain claims a segment by renaming it, so an append
 *   that wrote into a segment claimed meanwhile cannot know whether the drain read its line: it
 *   writes the line again into a fresh segment. An acknowledged line is therefore always in a
 *   segment a later drain reads in full (or already replayed).
 * - `drain` claims each segment by an atomic rename (of two drains, one wins; appenders
 *   rotate away from a claimed segment), replays it line by line (memory: one 64 KiB
 *   buffer and one line), and deletes it only after every line is stored, handed back to a
 *   fresh segment, or set aside — each of those copies synced first. A crash at any point
 *   leaves every acknowledged line stored or still in a segment or claim; replays are
 *   idempotent by eventId, so the duplicates a crash can cause are harmless.
 * - A drain claims another live instance's segment only once it has had no append for
 *   `segmentIdleMs` (a busy appender would otherwise rewrite its lines again and again); the
 *   segments of a process on this host that is gone, at once.
 * - A claim whose drain died is taken over: at once if the drain ran on this host and its
 *   process is gone, else once the claim has shown no progress for `staleClaimMs` (a drain
 *   still alive then only replays some lines twice).
 * - Concurrent appends in one instance are written together (one write, one sync per batch).
 *
 * The directory must be on a local filesystem (rename, O_APPEND and fsync as POSIX says).
 */
export class Spool {
  readonly dir: string;
  readonly legacyFile: string | undefined;
  readonly #staleClaimMs: number;
  readonly #segmentIdleMs: number;
  readonly #tailGraceMs: number;
  readonly #onStep: SpoolOptions["onStep"];
  readonly #token = randomBytes(6).toString("hex");
  #counter = 0;
  #dirReady = false;
  /** This instance's current segment; undefined until the first append and after a rotation. */
  #segment: string | undefined;
  #queue: QueuedAppend[] = [];
  #writing = false;
  /** The batch being written, if any. */
  #inflight: Promise<void> | undefined;
  /** Claims this instance's drains are replaying right now. */
  readonly #active = new Set<string>();

  constructor(options: SpoolOptions) {
    this.dir = resolve(options.dir);
    this.legacyFile = options.legacyFile === undefined ? undefined : resolve(options.legacyFile);
    this.#staleClaimMs = options.staleClaimMs ?? 60_000;
    this.#segmentIdleMs = options.segmentIdleMs ?? 500;
    this.#tailGraceMs = options.tailGraceMs ?? 50;
    this.#onStep = options.onStep;
  }

  /** The spool directory (kept as `path` for messages that name where an observation went). */
  get path(): string {
    return this.dir;
  }

  /** Appends one entry; resolves once it is durable (see the class notes). */
  append(observation: unknown): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = Buffer.from(`${JSON.stringify({ v: SPOOL_FORMAT_VERSION, observation })}\n`, "utf8");
    } catch (error) {
      return Promise.reject(error);
    }
    if (bytes.length > MAX_LINE_BYTES)
      return Promise.reject(
        LatchValidationError.at("spool entry", "observation", "longer than 8 MiB once serialized"),
      );
    return new Promise((resolve, reject) => {
      this.#queue.push({ bytes, resolve, reject });
      if (!this.#writing) void this.#writeQueued();
    });
  }

  /**
   * Waits for the appends in flight, then hands this instance's segment over to any drain at
   * once (renamed `seg_closed-…`, a name with no owner) instead of after `segmentIdleMs`. The
   * spool stays usable: a later append starts a fresh segment.
   */
  async close(): Promise<void> {
    while (this.#writing)
      await (this.#inflight ?? new Promise((r) => setImmediate(r))).catch(() => undefined);
    const segment = this.#segment;
    if (segment === undefined) return;
    this.#segment = undefined;
    try {
      await rename(segment, join(this.dir, `seg_closed-${this.#token}-${this.#counter}.jsonl`));
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error; // a drain claimed it first
    }
  }

  /**
   * Claims every segment present when it starts (and a legacy file), replays each entry through
   * `replay`, and deletes a segment once all its lines are accounted for. `replay` returns
   * `"stored"`, or `{ rejected }` to set the line aside for good; when it throws (the store is
   * down), that entry and the rest of its segment are handed back to a fresh segment and the
   * drain stops. `onSetAside` hears of every line moved aside.
   */
  async drain(
    replay: (observation: unknown, at: SpoolLineRef) => Promise<SpoolReplayOutcome>,
    onSetAside: (event: SpoolSetAside) => void = () => {},
  ): Promise<SpoolDrainReport> {
    const report: SpoolDrainReport = { segments: 0, replayed: 0, setAside: 0, handedBack: 0 };
    const legacy = await this.#claimLegacy();
    if (
      legacy !== undefined &&
      (await this.#replayClaim(legacy, this.legacyFile as string, replay, onSetAside, report))
    )
      return report;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      // Nothing was ever spooled here: a drain creates nothing.
      if (errorCode(error) === "ENOENT") return report;
      throw error;
    }
    for (const name of names) {
      const action = await this.#triage(name);
      if (action === "sweep") await unlinkIfPresent(join(this.dir, name));
      if (action !== "claim") continue;
      const claim = await this.#claim(name);
      if (claim === undefined) continue;
      if (await this.#replayClaim(claim, name, replay, onSetAside, report)) break;
    }
    return report;
  }

  #name(kind: string): string {
    this.#counter += 1;
    return `${kind}_${HOST}_${process.pid}_${this.#token}_${this.#counter}.jsonl`;
  }

  async #step(step: SpoolStep): Promise<void> {
    if (this.#onStep !== undefined) await this.#onStep(step);
  }

  async #ensureDir(): Promise<void> {
    if (this.#dirReady) return;
    const made = await mkdir(this.dir, { recursive: true });
    // The directory is an entry in its parent (made by us or by another process that may not
    // have synced it yet), and so is each directory mkdir created: sync the parents.
    for (let d = this.dir; ; d = dirname(d)) {
      await syncDir(dirname(d));
      if (made === undefined || resolve(d) === resolve(made) || dirname(d) === d) break;
    }
    this.#dirReady = true;
  }

  async #writeQueued(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#takeBatch();
        this.#inflight = this.#writeDurably(
          batch.length === 1 ? (batch[0] as QueuedAppend).bytes : Buffer.concat(batch.map((a) => a.bytes)),
        );
        try {
          await this.#inflight;
          for (const a of batch) a.resolve();
        } catch (error) {
          for (const a of batch) a.reject(error);
        } finally {
          this.#inflight = undefined;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  #takeBatch(): QueuedAppend[] {
    let bytes = 0;
    let n = 0;
    while (
      n < this.#queue.length &&
      (n === 0 || bytes + (this.#queue[n] as QueuedAppend).bytes.length <= MAX_BATCH_BYTES)
    ) {
      bytes += (this.#queue[n] as QueuedAppend).bytes.length;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  async #writeDurably(bytes: Buffer): Promise<void> {
    for (let attempt = 0; attempt < MAX_ROTATIONS; attempt++) {
      await this.#ensureDir();
      const { handle, path, created } = await this.#openSegment();
      let written: Stats;
      try {
        await writeFully(handle, bytes);
        await this.#step("append:written");
        await handle.datasync();
        if (created) await syncDir(this.dir);
        written = await handle.stat();
      } catch (error) {
        // The segment may end in a torn line now: later lines go to a fresh one.
        this.#segment = undefined;
        throw error;
      } finally {
        await handle.close();
      }
      await this.#step("append:synced");
      if (await isSameFile(path, written)) return;
      // A drain claimed the segment while these lines were written: it may or may not have read
      // them, so they go again into a fresh segment (a second replay is harmless, a loss is not).
      this.#segment = undefined;
    }
    throw new Error(`spool: a drain claimed ${MAX_ROTATIONS} fresh segments in a row in ${this.dir}`);
  }

  async #openSegment(): Promise<{ handle: FileHandle; path: string; created: boolean }> {
    const current = this.#segment;
    if (current !== undefined) {
      try {
        // No O_CREAT: a segment a drain renamed away must not come back under its old name.
        const handle = await open(current, constants.O_WRONLY | constants.O_APPEND);
        return { handle, path: current, created: false };
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
        this.#segment = undefined;
      }
    }
    const path = join(this.dir, this.#name("seg"));
    let handle: FileHandle;
    try {
      handle = await open(path, "ax");
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
      // The directory was removed under us: make it again.
      this.#dirReady = false;
      await this.#ensureDir();
      handle = await open(path, "ax");
    }
    this.#segment = path;
    await this.#step("append:created");
    return { handle, path, created: true };
  }

  /** Moves a legacy single-file spool into the directory as this drain's claim. */
  async #claimLegacy(): Promise<string | undefined> {
    if (this.legacyFile === undefined) return undefined;
    try {
      await stat(this.legacyFile);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return undefined;
      throw error;
    }
    await this.#ensureDir();
    const claim = join(this.dir, this.#name("claim"));
    try {
      await rename(this.legacyFile, claim);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT") return undefined;
      if (code !== "EXDEV") throw error;
      // Another filesystem: copy, make the copy durable, then remove the original.
      await copyFile(this.legacyFile, claim, constants.COPYFILE_EXCL);
      await syncFile(claim);
      await syncDir(this.dir);
      await unlink(this.legacyFile);
    }
    this.#active.add(claim);
    await touch(claim);
    await this.#step("drain:claimed");
    return claim;
  }

  /**
   * What a drain does with a directory entry: claim it, delete it (an unpublished copy of a
   * dead drain: its claim still holds every line), or leave it.
   */
  async #triage(name: string): Promise<"claim" | "sweep" | "leave"> {
    const keep = KEEP_NAME.exec(name);
    if (keep !== null) return Number(keep[1]) <= SPOOL_FORMAT_VERSION ? "claim" : "leave";
    const owned = OWNED_NAME.exec(name);
    // A segment put there by hand (a rejected file moved back after a fix) has no owner.
    if (owned === null) return SEGMENT_NAME.test(name) ? "claim" : "leave";
    const [, kind, host, pid, token] = owned as unknown as [string, string, string, string, string];
    const path = join(this.dir, name);
    if (token === this.#token) {
      // Ours: our own segment (its appender is told, see #claim), or a claim a failed drain of
      // ours left. Our unpublished copies are our drains' own business.
      return kind === "tmp" || this.#active.has(path) ? "leave" : "claim";
    }
    if (!(await this.#ownerGone(kind === "seg", host, Number(pid), path))) return "leave";
    return kind === "tmp" ? "sweep" : "claim";
  }

  /**
   * The owner of a segment, claim or copy is a process on this host that is gone, or has shown
   * no sign of life in it for `segmentIdleMs` (a segment) or `staleClaimMs` (a drain's files).
   */
  async #ownerGone(segment: boolean, host: string, pid: number, path: string): Promise<boolean> {
    const quietMs = segment ? this.#segmentIdleMs : this.#staleClaimMs;
    if (quietMs <= 0) return true;
    if (host === HOST && pid !== process.pid && !isAlive(pid)) return true;
    try {
      const st = await stat(path);
      // A claim's ctime moves with its rename too; a segment's mtime with each append.
      return Date.now() - (segment ? st.mtimeMs : Math.max(st.mtimeMs, st.ctimeMs)) >= quietMs;
    } catch (error) {
      if (errorCode(error) === "ENOENT") return false;
      throw error;
    }
  }

  /** Claims a segment by renaming it to a claim name of ours; undefined if another drain won. */
  async #claim(name: string): Promise<string | undefined> {
    const claim = join(this.dir, this.#name("claim"));
    const path = join(this.dir, name);
    if (path === this.#segment) {
      // Our own appender's segment: later batches go to a fresh one, and the batch in flight
      // lands before the rename, so no line of ours needs writing twice.
      this.#segment = undefined;
      await this.#inflight?.catch(() => undefined);
    }
    try {
      await rename(path, claim);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return undefined;
      throw error;
    }
    this.#active.add(claim);
    // A rename keeps the mtime: a claim of an old segment would look stale at once.
    await touch(claim);
    await this.#step("drain:claimed");
    return claim;
  }

  /** Replays one claim (`segment`: the name it had); true when the replay failed and the drain must stop. */
  async #replayClaim(
    claim: string,
    segment: string,
    replay: (observation: unknown, at: SpoolLineRef) => Promise<SpoolReplayOutcome>,
    onSetAside: (event: SpoolSetAside) => void,
    report: SpoolDrainReport,
  ): Promise<boolean> {
    let handle: FileHandle | undefined;
    try {
      // Not through a symlink, and without waiting for a writer (a FIFO): see below.
      handle = await open(claim, READ_NOFOLLOW);
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        handle = undefined;
      }
    } catch (error) {
      const code = errorCode(error);
      if (code !== "ELOOP" && code !== "EMLINK") {
        this.#active.delete(claim);
        if (code === "ENOENT") return false; // taken over by another drain, and done
        throw error;
      }
    }
    if (handle === undefined) {
      // Put there by hand, not by a Latch: reading a FIFO would block the drain (and start-up)
      // forever, a symlink would copy the file it names into the spool. Moved aside unread.
      await mkdir(join(this.dir, "rejected"), { recursive: true });
      const movedTo = join("rejected", `${basename(claim, ".jsonl")}_not_a_file.jsonl`);
      await rename(claim, join(this.dir, movedTo));
      this.#active.delete(claim);
      report.setAside++;
      onSetAside({ segment, line: 1, reason: "not_an_entry", detail: "not a regular file", movedTo });
      return false;
    }
    report.segments++;
    const outputs = new DrainOutputs(this.dir, (kind) => this.#name(kind));
    const heartbeatMs = Math.max(1_000, this.#staleClaimMs / 4);
    let lastBeat = Date.now();
    let failed = false;
    let oversized = false;
    try {
      for await (const raw of readLines(handle, this.#tailGraceMs)) {
        if (Date.now() - lastBeat >= heartbeatMs) {
          await touch(claim);
          await outputs.touch();
          lastBeat = Date.now();
        }
        const at = { segment, line: raw.line };
        if (raw.more || oversized) {
          // A line longer than any entry: streamed aside piece by piece, never held whole.
          const movedTo = await outputs.rejected(raw.bytes, !raw.more);
          oversized = raw.more;
          if (!raw.more) {
            report.setAside++;
            onSetAside({ ...at, reason: "not_an_entry", detail: "longer than 8 MiB", movedTo });
          }
          continue;
        }
        const entry = classify(raw);
        if (entry.kind === "blank") continue;
        if (entry.kind === "bad" || entry.kind === "newer") {
          const movedTo =
            entry.kind === "newer"
              ? await outputs.keep(entry.version, raw.bytes)
              : await outputs.rejected(raw.bytes, true);
          report.setAside++;
          onSetAside({ ...at, reason: entry.kind === "newer" ? "newer_version" : entry.reason, movedTo });
          continue;
        }
        if (failed) {
          await outputs.handBack(raw.bytes);
          report.handedBack++;
          continue;
        }
        let outcome: SpoolReplayOutcome;
        try {
          outcome = await replay(entry.observation, at);
        } catch {
          // The store is down: this entry and the rest of the segment wait for a later drain.
          failed = true;
          await outputs.handBack(raw.bytes);
          report.handedBack++;
          continue;
        }
        if (outcome === "stored") {
          report.replayed++;
          await this.#step("drain:replayed");
        } else {
          const movedTo = await outputs.rejected(raw.bytes, true);
          report.setAside++;
          onSetAside({ ...at, reason: "rejected", detail: outcome.rejected, cause: outcome.cause, movedTo });
        }
      }
      await this.#step("drain:read");
      try {
        await outputs.publish();
      } catch (error) {
        // Another drain found this one stale and swept a copy: the claim, left in place, still
        // holds every line (and may have been taken over too).
        if (errorCode(error) === "ENOENT") return failed;
        throw error;
      }
      await this.#step("drain:published");
      await unlinkIfPresent(claim); // absent if taken over meanwhile: that drain deletes it
      await syncDir(this.dir);
      await this.#step("drain:unlinked");
    } finally {
      await outputs.close();
      await handle.close();
      this.#active.delete(claim);
    }
    return failed;
  }
}

/**
 * The files one claim's lines are moved to, each created on first use. Segments and keep files
 * are written under a `tmp_` name no drain claims, and get their real name only once complete
 * and synced (`publish`): another drain never claims a half-written copy.
 */
class DrainOutputs {
  #handBack: LazyFile | undefined;
  readonly #keep = new Map<number, LazyFile>();
  #rejected: LazyFile | undefined;

  constructor(
    readonly dir: string,
    readonly name: (kind: string) => string,
  ) {}

  #staged(kind: string): LazyFile {
    return new LazyFile(join(this.dir, this.name("tmp")), this.name(kind));
  }

  async handBack(bytes: Buffer): Promise<string> {
    this.#handBack ??= this.#staged("seg");
    await this.#handBack.write(bytes, true);
    return this.#handBack.name;
  }

  async keep(version: number, bytes: Buffer): Promise<string> {
    let file = this.#keep.get(version);
    if (file === undefined) {
      file = this.#staged(`keep_v${version}`);
      this.#keep.set(version, file);
    }
    await file.write(bytes, true);
    return file.name;
  }

  async rejected(bytes: Buffer, endOfLine: boolean): Promise<string> {
    if (this.#rejected === undefined) {
      await mkdir(join(this.dir, "rejected"), { recursive: true });
      // Written in place: nothing reads rejected/ but people.
      const name = join("rejected", this.name("rejected").slice("rejected_".length));
      this.#rejected = new LazyFile(join(this.dir, name), name);
    }
    await this.#rejected.write(bytes, endOfLine);
    return this.#rejected.name;
  }

  #files(): LazyFile[] {
    return [this.#handBack, ...this.#keep.values(), this.#rejected].filter((f) => f !== undefined);
  }

  /** Marks progress on the unpublished copies, so other drains do not sweep them. */
  async touch(): Promise<void> {
    for (const file of this.#files()) if (file.opened) await touch(file.path);
  }

  /** Makes every copy durable and published: the files, their real names, the directory entries. */
  async publish(): Promise<void> {
    const files = this.#files();
    for (const file of files) await file.sync();
    for (const file of files) await file.publish(this.dir);
    if (this.#rejected !== undefined) await syncDir(join(this.dir, "rejected"));
    // rejected/ is itself an entry of the spool directory, which whoever made it may not have synced.
    if (files.length > 0) await syncDir(this.dir);
  }

  async close(): Promise<void> {
    for (const file of this.#files()) await file.close();
  }
}

/** A file opened exclusively (a fresh name) on its first write, at `path`; `name` once published. */
class LazyFile {
  #handle: FileHandle | undefined;

  constructor(
    readonly path: string,
    /** Its name relative to the spool directory once published. */
    readonly name: string,
  ) {}

  get opened(): boolean {
    return this.#handle !== undefined;
  }

  async write(bytes: Buffer, endOfLine: boolean): Promise<void> {
    this.#handle ??= await open(this.path, "ax");
    await writeFully(this.#handle, endOfLine ? Buffer.concat([bytes, NEWLINE]) : bytes);
  }

  async sync(): Promise<void> {
    await this.#handle?.datasync();
  }

  /** Renames the file to its real name (it fails if a drain swept it as abandoned meanwhile). */
  async publish(dir: string): Promise<void> {
    const target = join(dir, this.name);
    if (this.#handle !== undefined && this.path !== target) await rename(this.path, target);
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}

const NEWLINE = Buffer.from("\n");
const utf8 = new TextDecoder("utf-8", { fatal: true });

type Classified =
  | { kind: "blank" }
  | { kind: "entry"; observation: unknown }
  | { kind: "newer"; version: number }
  | { kind: "bad"; reason: "torn" | "not_json" | "not_an_entry" };

function classify(raw: RawLine): Classified {
  let text: string;
  let parsed: unknown;
  try {
    // Fatal decoding: a damaged byte must not turn into U+FFFD inside an id and replay as another id.
    text = utf8.decode(raw.bytes);
    if (text.trim() === "") return { kind: "blank" };
    parsed = JSON.parse(text);
  } catch {
    return { kind: "bad", reason: raw.terminated ? "not_json" : "torn" };
  }
  // An unterminated line that parses was written whole; only its newline is missing.
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return { kind: "bad", reason: "not_an_entry" };
  const v = (parsed as { v?: unknown }).v;
  if (v === SPOOL_FORMAT_VERSION && Object.hasOwn(parsed, "observation"))
    return { kind: "entry", observation: (parsed as { observation: unknown }).observation };
  if (typeof v === "number" && Number.isSafeInteger(v) && v > SPOOL_FORMAT_VERSION)
    return { kind: "newer", version: v };
  return { kind: "bad", reason: "not_an_entry" };
}

/**
 * The lines of a file, read in 64 KiB chunks. An unterminated last line is yielded after a
 * short grace (a write in flight finishes meanwhile); a line longer than MAX_LINE_BYTES comes
 * in pieces.
 */
async function* readLines(handle: FileHandle, graceMs: number): AsyncGenerator<RawLine> {
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let position = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 1;
  let waited = false;
  for (;;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) {
      if (pendingBytes === 0) return;
      // An unterminated tail: a write in flight (its appender writes it again if this drain
      // misses it) or one cut by a crash. Give a write in flight a moment to land.
      if (!waited) {
        waited = true;
        if (await grows(handle, position, graceMs)) continue;
      }
      yield { bytes: Buffer.concat(pending), line, terminated: false, more: false };
      return;
    }
    waited = false;
    position += bytesRead;
    const data = chunk.subarray(0, bytesRead);
    let start = 0;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a, start)) {
      pending.push(Buffer.from(data.subarray(start, nl)));
      yield { bytes: Buffer.concat(pending), line, terminated: true, more: false };
      pending = [];
      pendingBytes = 0;
      line++;
      start = nl + 1;
    }
    if (start < bytesRead) {
      pending.push(Buffer.from(data.subarray(start)));
      pendingBytes += bytesRead - start;
      if (pendingBytes > MAX_LINE_BYTES) {
        yield { bytes: Buffer.concat(pending), line, terminated: false, more: true };
        pending = [];
        pendingBytes = 0;
      }
    }
  }
}

/** Polls the file's size for up to `ms`: true as soon as it is past `size`. */
async function grows(handle: FileHandle, size: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if ((await handle.stat()).size > size) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, Math.min(10, ms)));
  }
}

async function writeFully(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** fsync of a directory: makes the entries created, renamed or removed in it durable. */
async function syncDir(path: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals its metadata itself.
  if (process.platform === "win32") return;
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
}

async function isSameFile(path: string, written: Stats): Promise<boolean> {
  try {
    const now = await stat(path);
    return now.ino === written.ino && now.dev === written.dev;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

/** Marks progress on a claim (its mtime), so other drains see it is not stale. */
async function touch(path: string): Promise<void> {
  const now = new Date();
  try {
    await utimes(path, now, now);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Where `createLatch` keeps its spool: `spoolDir`, else the directory named like `spoolPath`
 * without `.jsonl` (`./.latch/spool.jsonl` → `./.latch/spool/`), else `./.latch/spool/`. The
 * single-file spool of earlier versions (`spoolPath`, by default `./.latch/spool.jsonl`) is
 * migrated; with only `spoolDir` given, no legacy file is looked for.
 */
export function spoolLocation(options: { spoolDir?: string; spoolPath?: string }): {
  dir: string;
  legacyFile?: string;
} {
  const { spoolDir, spoolPath } = options;
  if (spoolPath === undefined)
    return spoolDir === undefined
      ? { dir: ".latch/spool", legacyFile: ".latch/spool.jsonl" }
      : { dir: spoolDir };
  const stem = spoolPath.endsWith(".jsonl") ? spoolPath.slice(0, -".jsonl".length) : "";
  const derived = stem === "" || stem.endsWith("/") || stem.endsWith("\\") ? `${spoolPath}.d` : stem;
  return { dir: spoolDir ?? derived, legacyFile: spoolPath };
}
