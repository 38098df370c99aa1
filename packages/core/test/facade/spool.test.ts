import { spawnSync } from "node:child_process";
import { appendFile, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Spool, type SpoolSetAside, type SpoolStep, spoolLocation } from "../../src/facade/spool.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-spool-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One spool line as `append` writes it. */
const line = (id: string) => `${JSON.stringify({ v: 1, observation: { id } })}\n`;

/** Drains with a replay that stores every entry's id in `stored` (a store that never fails). */
function drainInto(spool: Spool, stored: string[], asides: SpoolSetAside[] = []) {
  return spool.drain(
    async (observation) => {
      stored.push((observation as { id: string }).id);
      return "stored";
    },
    (aside) => asides.push(aside),
  );
}

/** Pending files of the spool: segments, claims and keep files (not rejected/). */
async function pending(path = dir): Promise<string[]> {
  return (await readdir(path)).filter((name) => name !== "rejected").sort();
}

/** Every line of every file in rejected/, in file-name order. */
async function rejectedLines(): Promise<string[]> {
  const names = await readdir(join(dir, "rejected")).catch(() => [] as string[]);
  const lines: string[] = [];
  for (const name of names.sort()) {
    const text = await readFile(join(dir, "rejected", name), "utf8");
    expect(text.endsWith("\n")).toBe(true);
    lines.push(...text.slice(0, -1).split("\n"));
  }
  return lines;
}

describe("Spool: append and drain", () => {
  it("appends lines to a segment of its own; a drain replays them in order and deletes the segment", async () => {
    const spool = new Spool({ dir });
    for (const id of ["a", "b", "c"]) await spool.append({ id });
    const [segment, ...others] = await readdir(dir);
    expect(others).toEqual([]);
    expect(segment).toMatch(/^seg_[A-Za-z0-9.-]+_\d+_[0-9a-f]{12}_\d+\.jsonl$/);
    expect(await readFile(join(dir, segment as string), "utf8")).toBe(line("a") + line("b") + line("c"));

    const seen: Array<[unknown, string, number]> = [];
    const report = await spool.drain(async (observation, at) => {
      seen.push([observation, at.segment, at.line]);
      return "stored";
    });
    expect(seen).toEqual([
      [{ id: "a" }, segment, 1],
      [{ id: "b" }, segment, 2],
      [{ id: "c" }, segment, 3],
    ]);
    expect(report).toEqual({ segments: 1, replayed: 3, setAside: 0, handedBack: 0 });
    expect(await readdir(dir)).toEqual([]);

    // The drain took the appender's segment: the next append starts a fresh one.
    await spool.append({ id: "d" });
    const [fresh] = await readdir(dir);
    expect(fresh).not.toBe(segment);
    expect(await readFile(join(dir, fresh as string), "utf8")).toBe(line("d"));
  });

  it("500 concurrent appends in one process all land, each once, in one segment", async () => {
    const spool = new Spool({ dir });
    const ids = Array.from({ length: 500 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id) => spool.append({ id })));
    expect(await readdir(dir)).toHaveLength(1);
    const stored: string[] = [];
    await drainInto(spool, stored);
    expect(stored.sort()).toEqual([...ids].sort());
  });

  it("an append whose segment a drain claimed while it wrote writes its line again into a fresh segment", async () => {
    const drainer = new Spool({ dir, segmentIdleMs: 0 });
    const stored: string[] = [];
    let raced = false;
    const appender = new Spool({
      dir,
      onStep: async (step) => {
        // Another process drains between this append's write and its check of the segment.
        if (step === "append:written" && !raced) {
          raced = true;
          await drainInto(drainer, stored);
        }
      },
    });
    await appender.append({ id: "x" });
    expect(stored).toEqual(["x"]); // the drain read the line before it was synced...
    const files = await readdir(dir);
    expect(files).toHaveLength(1); // ...but the append could not know: it wrote it again
    expect(await readFile(join(dir, files[0] as string), "utf8")).toBe(line("x"));
    await drainInto(drainer, stored);
    expect(stored).toEqual(["x", "x"]); // replayed twice, which the store's idempotency absorbs
    expect(await readdir(dir)).toEqual([]);
  });

  it("appenders and drains racing in one process: every acknowledged line is replayed, and the spool ends empty", async () => {
    const appenders = [new Spool({ dir }), new Spool({ dir })];
    // One drain of another instance that claims segments 20 ms after their last write, one of
    // an appender's own instance (which claims its own segment at once, without a race).
    const drainers = [new Spool({ dir, segmentIdleMs: 20 }), appenders[0] as Spool];
    const acked: string[] = [];
    const stored: string[] = [];
    let done = false;
    const drains = drainers.map(async (drainer) => {
      while (!done) {
        await drainInto(drainer, stored);
        await new Promise((r) => setImmediate(r));
      }
    });
    await Promise.all(
      appenders.map(async (spool, a) => {
        for (let i = 0; i < 300; i += 10) {
          const ids = Array.from({ length: 10 }, (_, k) => `a${a}-${i + k}`);
          await Promise.all(ids.map((id) => spool.append({ id }).then(() => acked.push(id))));
        }
      }),
    );
    done = true;
    await Promise.all(drains);
    await drainInto(new Spool({ dir, segmentIdleMs: 0 }), stored);
    expect(acked).toHaveLength(600);
    expect(new Set(stored)).toEqual(new Set(acked));
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("Spool: lines a drain cannot replay are kept", () => {
  it("a torn last line goes to rejected/ byte for byte; its neighbours are replayed", async () => {
    const torn = line("c").slice(0, 17);
    await writeFile(join(dir, "seg_test-1.jsonl"), `${line("a")}${line("b")}${torn}`);
    const stored: string[] = [];
    const asides: SpoolSetAside[] = [];
    const report = await drainInto(new Spool({ dir, tailGraceMs: 0 }), stored, asides);
    expect(stored).toEqual(["a", "b"]);
    expect(report).toEqual({ segments: 1, replayed: 2, setAside: 1, handedBack: 0 });
    expect(asides).toEqual([
      { segment: "seg_test-1.jsonl", line: 3, reason: "torn", movedTo: expect.stringMatching(/^rejected\//) },
    ]);
    expect(await rejectedLines()).toEqual([torn]);
    expect(await pending()).toEqual([]);
  });

  it("a last line still being written when the drain reaches it is replayed, not set aside", async () => {
    const path = join(dir, "seg_test-1.jsonl");
    const whole = line("b");
    await writeFile(path, `${line("a")}${whole.slice(0, 10)}`);
    const stored: string[] = [];
    const drained = drainInto(new Spool({ dir, tailGraceMs: 30_000 }), stored);
    // The writer finishes its line while the drain waits at the unterminated tail (or before).
    await new Promise((r) => setTimeout(r, 20));
    const handle = await open(join(dir, (await readdir(dir))[0] as string), "a");
    await handle.write(whole.slice(10));
    await handle.close();
    expect(await drained).toMatchObject({ replayed: 2, setAside: 0 });
    expect(stored).toEqual(["a", "b"]);
  });

  it("unknown lines are preserved: a newer format is kept for a newer drain, the rest moved to rejected/, never deleted", async () => {
    const newer = JSON.stringify({ v: 2, observation: { id: "n" }, extra: [1, 2] });
    const notAnEntry = JSON.stringify({ id: "no-version" });
    const notJson = "{ not json";
    const badUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]); // "{\xff\xfe}": no string may turn into U+FFFD
    const invalid = JSON.stringify({ v: 1, observation: { id: "invalid" } });
    await writeFile(
      join(dir, "seg_test-1.jsonl"),
      Buffer.concat([
        Buffer.from(`${line("a")}\n${newer}\n${notAnEntry}\n${notJson}\n`),
        badUtf8,
        Buffer.from(`\n${invalid}\n${line("b")}`),
      ]),
    );
    const stored: string[] = [];
    const asides: SpoolSetAside[] = [];
    const spool = new Spool({ dir });
    const report = await spool.drain(
      async (observation) => {
        const { id } = observation as { id: string };
        if (id === "invalid") return { rejected: "not a valid observation" };
        stored.push(id);
        return "stored";
      },
      (aside) => asides.push(aside),
    );
    expect(stored).toEqual(["a", "b"]);
    expect(report).toEqual({ segments: 1, replayed: 2, setAside: 5, handedBack: 0 });
    expect(asides.map(({ line, reason, detail }) => ({ line, reason, detail }))).toEqual([
      { line: 3, reason: "newer_version", detail: undefined },
      { line: 4, reason: "not_an_entry", detail: undefined },
      { line: 5, reason: "not_json", detail: undefined },
      { line: 6, reason: "not_json", detail: undefined },
      { line: 7, reason: "rejected", detail: "not a valid observation" },
    ]);
    const [keep, ...others] = await pending();
    expect(others).toEqual([]);
    expect(keep).toMatch(/^keep_v2_.+\.jsonl$/);
    expect(await readFile(join(dir, keep as string), "utf8")).toBe(`${newer}\n`);
    const [rejected] = await readdir(join(dir, "rejected"));
    expect(await readFile(join(dir, "rejected", rejected as string))).toEqual(
      Buffer.concat([Buffer.from(`${notAnEntry}\n${notJson}\n`), badUtf8, Buffer.from(`\n${invalid}\n`)]),
    );

    // A drain of this version leaves the newer lines alone (no churn), and rejected/ stays.
    expect(await drainInto(spool, stored)).toEqual({ segments: 0, replayed: 0, setAside: 0, handedBack: 0 });
    expect(await pending()).toEqual([keep]);
    expect(await readdir(join(dir, "rejected"))).toEqual([rejected]);
  });

  it("a line longer than 8 MiB is moved to rejected/ in pieces, byte for byte, without holding it whole", async () => {
    const long = `{"v":1,"observation":{"id":"${"x".repeat(9 * 1024 * 1024)}"}}`;
    await writeFile(join(dir, "seg_test-1.jsonl"), `${line("a")}${long}\n${line("b")}`);
    const stored: string[] = [];
    const asides: SpoolSetAside[] = [];
    await drainInto(new Spool({ dir }), stored, asides);
    expect(stored).toEqual(["a", "b"]);
    expect(asides.map((a) => [a.line, a.reason, a.detail])).toEqual([
      [2, "not_an_entry", "longer than 8 MiB"],
    ]);
    const [rejected] = await readdir(join(dir, "rejected"));
    expect(await readFile(join(dir, "rejected", rejected as string), "utf8")).toBe(`${long}\n`);
    await expect(new Spool({ dir }).append({ id: "x".repeat(9 * 1024 * 1024) })).rejects.toMatchObject({
      code: "invalid_input",
    });
  });
});

describe("Spool: a failing store", () => {
  it("hands the failed entry and the rest of its segment back to a fresh segment and stops; a later drain replays them", async () => {
    await writeFile(join(dir, "seg_test-1.jsonl"), ["a", "b", "c", "d"].map(line).join(""));
    await writeFile(join(dir, "seg_test-2.jsonl"), line("e"));
    const spool = new Spool({ dir });
    const stored: string[] = [];
    let failures = 0;
    const report = await spool.drain(async (observation) => {
      const { id } = observation as { id: string };
      if (id === "c" || id === "e") {
        failures++;
        throw new Error("connect ECONNREFUSED");
      }
      stored.push(id);
      return "stored";
    });
    // Whichever segment it claimed first, the drain stopped at its first failure.
    expect(failures).toBe(1);
    expect(report.segments).toBe(1);
    expect(report.replayed + report.handedBack).toBe(stored.includes("a") ? 4 : 1);
    const files = await pending();
    expect(files).toHaveLength(2);
    expect(files.every((f) => f.startsWith("seg_"))).toBe(true);
    if (stored.includes("a")) {
      expect(stored).toEqual(["a", "b"]);
      const handedBack = files.find((f) => !f.startsWith("seg_test-")) as string;
      expect(await readFile(join(dir, handedBack), "utf8")).toBe(line("c") + line("d"));
    }
    await drainInto(spool, stored);
    expect(new Set(stored)).toEqual(new Set(["a", "b", "c", "d", "e"]));
    expect(await pending()).toEqual([]);
  });
});

/** A spool frozen at the nth time it reaches `step`: a process killed right there. */
function killedAt(step: SpoolStep, nth: number) {
  let seen = 0;
  let kill = () => {};
  const killed = new Promise<void>((resolve) => {
    kill = resolve;
  });
  return {
    killed,
    onStep: async (s: SpoolStep) => {
      if (s !== step || ++seen !== nth) return;
      kill();
      await new Promise(() => {}); // never resumes
    },
  };
}

/** Runs `work` until it ends or the spool is killed; true when killed. */
function runUntilKilled(work: () => Promise<unknown>, killed: Promise<void>): Promise<boolean> {
  return Promise.race([work().then(() => false), killed.then(() => true)]);
}

describe("Spool: a crash at any step loses no acknowledged line", () => {
  const appendCases: Array<[SpoolStep, number]> = [
    ["append:created", 1],
    ["append:written", 1],
    ["append:written", 3],
    ["append:synced", 1],
    ["append:synced", 3],
  ];
  it.each(appendCases)("killed at %s (#%i) while appending", async (step, nth) => {
    const { killed, onStep } = killedAt(step, nth);
    const spool = new Spool({ dir, onStep });
    const acked: string[] = [];
    const wasKilled = await runUntilKilled(async () => {
      for (let i = 0; i < 5; i++) {
        await spool.append({ id: `a${i}` });
        acked.push(`a${i}`);
      }
    }, killed);
    expect(wasKilled).toBe(true);
    expect(acked).toHaveLength(nth - 1);
    const stored: string[] = [];
    await drainInto(new Spool({ dir, segmentIdleMs: 0 }), stored); // the victim shares our pid: dead by fiat
    for (const id of acked) expect(stored).toContain(id);
    expect(await pending()).toEqual([]);
  });

  const drainSteps: SpoolStep[] = [
    "drain:claimed",
    "drain:replayed",
    "drain:read",
    "drain:published",
    "drain:unlinked",
  ];
  const drainCases = drainSteps.flatMap((step) =>
    [1, 2].flatMap((nth) =>
      [true, false].map((storeUp) => [step, nth, storeUp] as [SpoolStep, number, boolean]),
    ),
  );
  it.each(drainCases)("killed at %s (#%i) while draining, store up: %s", async (step, nth, storeUp) => {
    // Acknowledged: a legacy file, two appended lines, and a segment with lines to set aside.
    const legacyFile = join(dir, "spool.jsonl");
    const spoolDir = join(dir, "spool");
    await writeFile(legacyFile, `\n${line("l1")}\n${line("l2")}`);
    const writer = new Spool({ dir: spoolDir });
    await writer.append({ id: "e1" });
    await writer.append({ id: "e2" });
    const newer = JSON.stringify({ v: 2, observation: { id: "n" } });
    await writeFile(join(spoolDir, "seg_test-1.jsonl"), `${line("e3")}garbage\n${newer}\n${line("e4")}`);
    const acked = ["l1", "l2", "e1", "e2", "e3", "e4"];

    const { killed, onStep } = killedAt(step, nth);
    const stored: string[] = [];
    const victim = new Spool({ dir: spoolDir, legacyFile, onStep, segmentIdleMs: 0 });
    await runUntilKilled(
      () =>
        victim.drain(async (observation) => {
          const { id } = observation as { id: string };
          if (!storeUp && (id === "l2" || id === "e1" || id === "e4")) throw new Error("store down");
          stored.push(id);
          return "stored";
        }),
      killed,
    );

    // The next process takes over the dead drain's claims (staleClaimMs 0: the victim shares our pid).
    const next = new Spool({ dir: spoolDir, legacyFile, staleClaimMs: 0, segmentIdleMs: 0 });
    await drainInto(next, stored);
    for (const id of acked) expect(stored).toContain(id);
    await expect(readFile(legacyFile)).rejects.toMatchObject({ code: "ENOENT" });
    const left = await pending(spoolDir);
    expect(left.length).toBeGreaterThan(0);
    for (const name of left) {
      expect(name).toMatch(/^keep_v2_/);
      const kept = (await readFile(join(spoolDir, name), "utf8")).split("\n");
      expect(kept.pop()).toBe("");
      expect(new Set(kept)).toEqual(new Set([newer]));
    }
    const rejected = await readdir(join(spoolDir, "rejected"));
    let garbage = 0;
    for (const name of rejected) {
      const text = await readFile(join(spoolDir, "rejected", name), "utf8");
      expect(text.replaceAll("garbage\n", "")).toBe("");
      garbage += text.length;
    }
    expect(garbage).toBeGreaterThan(0);
  });
});

describe("Spool: a drain's copies", () => {
  it("a hand-back being written is invisible to other drains until published; a dead drain's copy is swept", async () => {
    await writeFile(join(dir, "seg_test-1.jsonl"), ["a", "b", "c"].map(line).join(""));
    const other = new Spool({ dir, segmentIdleMs: 0 });
    const seenByOther: string[] = [];
    let during: string[] = [];
    const drainer = new Spool({
      dir,
      onStep: async (step) => {
        if (step !== "drain:read") return;
        // Every line is copied, nothing is published yet: another drain must leave the copy.
        during = await pending();
        await drainInto(other, seenByOther);
      },
    });
    const report = await drainer.drain(async () => {
      throw new Error("store down");
    });
    expect(report).toEqual({ segments: 1, replayed: 0, setAside: 0, handedBack: 3 });
    expect(during.some((f) => f.startsWith("tmp_"))).toBe(true);
    expect(seenByOther).toEqual([]);
    const [handedBack, ...rest] = await pending();
    expect(rest).toEqual([]);
    expect(handedBack).toMatch(/^seg_/);
    expect(await readFile(join(dir, handedBack as string), "utf8")).toBe(["a", "b", "c"].map(line).join(""));

    const host = (handedBack as string).split("_")[1];
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    const orphan = `tmp_${host}_${gone}_0123456789ab_7.jsonl`;
    await writeFile(join(dir, orphan), line("z"));
    const stored: string[] = [];
    await drainInto(new Spool({ dir, segmentIdleMs: 0 }), stored);
    expect(stored).toEqual(["a", "b", "c"]); // the orphan copy is not replayed: its claim holds its lines
    expect(await pending()).toEqual([]);
  });
});

describe("Spool: segments of other live instances", () => {
  it("are left to their appender until idle for segmentIdleMs; close() hands the segment over at once", async () => {
    const appender = new Spool({ dir });
    await appender.append({ id: "a" });
    const stored: string[] = [];
    await drainInto(new Spool({ dir, segmentIdleMs: 60_000 }), stored);
    expect(stored).toEqual([]);
    await appender.close();
    const [closed] = await readdir(dir);
    expect(closed).toMatch(/^seg_closed-[0-9a-f]{12}-\d+\.jsonl$/);
    await drainInto(new Spool({ dir, segmentIdleMs: 60_000 }), stored);
    expect(stored).toEqual(["a"]);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("Spool: claims of dead drains", () => {
  async function hostPart(): Promise<string> {
    const probe = new Spool({ dir: join(dir, "probe") });
    await probe.append({ id: "p" });
    const [name] = await readdir(join(dir, "probe"));
    return (name as string).split("_")[1] as string;
  }

  it("a claim of a process on this host that is gone is taken over at once", async () => {
    const host = await hostPart();
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    await writeFile(join(dir, `claim_${host}_${gone}_0123456789ab_1.jsonl`), line("a"));
    const stored: string[] = [];
    await drainInto(new Spool({ dir }), stored); // default staleClaimMs: 60 s
    expect(stored).toEqual(["a"]);
    expect(await pending()).toEqual(["probe"]);
  });

  it("a claim of a live process is left to it until it shows no progress for staleClaimMs", async () => {
    const host = await hostPart();
    const name = `claim_${host}_${process.ppid}_0123456789ab_1.jsonl`;
    await writeFile(join(dir, name), line("a"));
    const stored: string[] = [];
    await drainInto(new Spool({ dir }), stored);
    expect(stored).toEqual([]);
    expect(await pending()).toEqual([name, "probe"]);
    await new Promise((r) => setTimeout(r, 300));
    await drainInto(new Spool({ dir, staleClaimMs: 200 }), stored);
    expect(stored).toEqual(["a"]);
  });
});

describe("Spool: memory", () => {
  it("drains a 60 MB segment line by line: the heap grows by a small fraction of the file", async () => {
    const path = join(dir, "seg_test-1.jsonl");
    const pad = "p".repeat(400);
    const lines = 120_000;
    for (let i = 0; i < lines; i += 10_000) {
      let chunk = "";
      for (let k = i; k < i + 10_000; k++)
        chunk += `${JSON.stringify({ v: 1, observation: { id: `m${k}`, pad } })}\n`;
      await appendFile(path, chunk);
    }
    const before = process.memoryUsage();
    let peak = 0;
    let count = 0;
    const report = await new Spool({ dir }).drain(async (observation, at) => {
      if ((observation as { id: string }).id === `m${at.line - 1}`) count++;
      if (at.line % 1000 === 0) {
        const now = process.memoryUsage();
        peak = Math.max(peak, now.heapUsed + now.arrayBuffers - before.heapUsed - before.arrayBuffers);
      }
      return "stored";
    });
    expect(report.replayed).toBe(lines);
    expect(count).toBe(lines);
    // Reading the file whole would hold a 60 MB string before parsing anything.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  });
});

describe("Spool: location and the legacy single-file spool", () => {
  it("spoolLocation: the default, a spoolDir, and a directory named after a legacy spoolPath", () => {
    expect(spoolLocation({})).toEqual({ dir: ".latch/spool", legacyFile: ".latch/spool.jsonl" });
    expect(spoolLocation({ spoolDir: "/var/lib/app/spool" })).toEqual({ dir: "/var/lib/app/spool" });
    expect(spoolLocation({ spoolPath: "/data/latch.jsonl" })).toEqual({
      dir: "/data/latch",
      legacyFile: "/data/latch.jsonl",
    });
    expect(spoolLocation({ spoolPath: "/data/spool" })).toEqual({
      dir: "/data/spool.d",
      legacyFile: "/data/spool",
    });
    expect(spoolLocation({ spoolPath: "/data/.jsonl" })).toEqual({
      dir: "/data/.jsonl.d",
      legacyFile: "/data/.jsonl",
    });
    expect(spoolLocation({ spoolDir: "/q", spoolPath: "/data/a.jsonl" })).toEqual({
      dir: "/q",
      legacyFile: "/data/a.jsonl",
    });
  });

  it("a drain of a spool that never existed creates nothing", async () => {
    const spool = new Spool({ dir: join(dir, "never"), legacyFile: join(dir, "never.jsonl") });
    expect(await drainInto(spool, [])).toEqual({ segments: 0, replayed: 0, setAside: 0, handedBack: 0 });
    expect(await readdir(dir)).toEqual([]);
  });

  it("a legacy spool file is migrated: replayed, then removed; the directory is resolved once", async () => {
    const legacyFile = join(dir, "old.jsonl");
    await writeFile(legacyFile, `\n${line("l1")}\n${line("l2")}`);
    const spool = new Spool({ dir: join(dir, "new"), legacyFile });
    expect(spool.dir).toBe(resolve(dir, "new"));
    const stored: string[] = [];
    const asides: SpoolSetAside[] = [];
    expect(await drainInto(spool, stored, asides)).toEqual({
      segments: 1,
      replayed: 2,
      setAside: 0,
      handedBack: 0,
    });
    expect(stored).toEqual(["l1", "l2"]);
    expect(asides).toEqual([]);
    await expect(readFile(legacyFile)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(join(dir, "new"))).toEqual([]);
  });
});
