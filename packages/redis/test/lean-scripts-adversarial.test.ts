/**
 * Adversarial checks of the lean reserve-3.lua and commit-4.lua (8e717b1, 426e815: no closure
 * on reserve's common path, library() built lazily; TIME in commit only for a period).
 *
 * 1. Differential: random sequences of reserve / commit / void / unreserve / setLimit /
 *    period end + roll / expiry / record eviction, each run on the scripts as they were before
 *    the refactor (test/support/pre-lean-scripts.ts, frozen at 44fba99) and on the current
 *    ones, under two key prefixes: every reply and the resulting keys must be the same (server
 *    times normalised). Hostile holdIds and accounts ("|", U+0000, a lone surrogate) and
 *    amounts up to 2^53-1 are part of the alphabet.
 * 2. Concurrency: child processes reserve / commit / void the same holdIds of the same
 *    accounts: each hold granted (as new) once, resolved once, spent + held = the amounts of
 *    the holds granted and not resolved plus the committed actuals, never above the limit.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LatchValidationError } from "@latch/core";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { RedisQuota } from "../src/index.js";
import { LUA_SCRIPTS } from "../src/lua/generated.js";
import { PRE_LEAN_COMMIT, PRE_LEAN_RESERVE } from "./support/pre-lean-scripts.js";
import { connectRedis, deleteByPrefix, REDIS_URL, runPrefix } from "./support/redis.js";

const keyPrefix = runPrefix("lean-adv");
const connected: Promise<Redis> = connectRedis();
afterAll(async () => {
  const redis = await connected;
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

type Script = "reserve" | "commit" | "void" | "unreserve" | "setLimit" | "rollPeriod";
type Shas = Record<Script, string>;

async function load(redis: Redis, pre: boolean): Promise<Shas> {
  const lua = (name: Script) =>
    pre && name === "reserve"
      ? PRE_LEAN_RESERVE
      : pre && name === "commit"
        ? PRE_LEAN_COMMIT
        : LUA_SCRIPTS[name].lua;
  const names: Script[] = ["reserve", "commit", "void", "unreserve", "setLimit", "rollPeriod"];
  const shas = await Promise.all(names.map((name) => redis.script("LOAD", lua(name)) as Promise<string>));
  return Object.fromEntries(names.map((name, i) => [name, shas[i]])) as Shas;
}

const HOLDS = ["h1", "h2", "h|3", "h\u00004", "\uD800"] as const;
const ACCOUNTS = ["acc", "a|b"] as const;
const AMOUNTS = ["1", "3", "7", "9007199254740991"] as const;
const LIMITS = ["0", "10", "25", "9007199254740991"] as const;
const TTLS = ["600000", "300000"] as const;

type Op =
  | {
      op: "reserve";
      h: number;
      a: number;
      amount: number;
      ttl: number;
      token: number;
      tolerant: boolean;
      /** A real ttlMs instead of TTLS[ttl] (the real-time sequence). */
      ttlMs?: string;
    }
  | { op: "commit"; h: number; a: number; actual: string; granted: number | null; tolerant: boolean }
  | { op: "void"; h: number; a: number; granted: number | null; tolerant: boolean }
  | { op: "unreserve"; h: number; a: number; amount: number; token: number; tolerant: boolean }
  | { op: "setLimit"; a: number; limit: number; rolling: boolean; windowMs?: string }
  | { op: "endPeriod"; a: number }
  | { op: "rollPeriod"; a: number }
  | { op: "expire"; h: number; a: number; due: boolean }
  | { op: "evict"; h: number };

const idx = (n: number) => fc.nat({ max: n - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("reserve" as const),
      h: idx(HOLDS.length),
      a: idx(ACCOUNTS.length),
      amount: idx(AMOUNTS.length),
      ttl: idx(TTLS.length),
      token: idx(3),
      tolerant: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("commit" as const),
      h: idx(HOLDS.length),
      a: idx(ACCOUNTS.length),
      actual: fc.constantFrom("0", "1", "3", "7", "9007199254740991"),
      granted: fc.option(idx(AMOUNTS.length)),
      tolerant: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("void" as const),
      h: idx(HOLDS.length),
      a: idx(ACCOUNTS.length),
      granted: fc.option(idx(AMOUNTS.length)),
      tolerant: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("unreserve" as const),
      h: idx(HOLDS.length),
      a: idx(ACCOUNTS.length),
      amount: idx(AMOUNTS.length),
      token: idx(3),
      tolerant: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("setLimit" as const),
      a: idx(ACCOUNTS.length),
      limit: idx(LIMITS.length),
      rolling: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("endPeriod" as const), a: idx(ACCOUNTS.length) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("rollPeriod" as const), a: idx(ACCOUNTS.length) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("expire" as const),
      h: idx(HOLDS.length),
      a: idx(ACCOUNTS.length),
      due: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("evict" as const), h: idx(HOLDS.length) }) },
);

const DAY = 86_400_000;

/** One world: a key prefix and the scripts it runs. */
class World {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly shas: Shas,
  ) {}
  account = (a: number) => `${this.prefix}:a:{${ACCOUNTS[a]}}`;
  expiry = (a: number) => `${this.prefix}:e:{${ACCOUNTS[a]}}`;
  settled = (a: number) => `${this.prefix}:s:{${ACCOUNTS[a]}}`;
  record = (h: number) => `${this.prefix}:r:${HOLDS[h]}`;

  async run(op: Op): Promise<unknown> {
    const call = (name: Script, keys: string[], args: (string | undefined)[]) =>
      this.redis
        .evalsha(this.shas[name], keys.length, ...keys, ...args.filter((x): x is string => x !== undefined))
        .catch(
          (error: Error) =>
            `ERR ${error.message.replace(/script: \w+|user_script:\d+:|@user_script:\d+/g, "")}`,
        );
    switch (op.op) {
      case "reserve": {
        const ttl = op.ttlMs ?? TTLS[op.ttl];
        return call(
          "reserve",
          [this.account(op.a), this.expiry(op.a), this.record(op.h)],
          [
            HOLDS[op.h],
            AMOUNTS[op.amount],
            ttl,
            String(Number(ttl) + 60_000),
            ACCOUNTS[op.a],
            op.token === 0 ? "" : `t${op.token}`,
            op.tolerant ? "60000" : undefined,
          ],
        );
      }
      case "commit":
        return call(
          "commit",
          [this.account(op.a), this.expiry(op.a), this.record(op.h), this.settled(op.a)],
          [
            HOLDS[op.h],
            op.actual,
            "60000",
            ACCOUNTS[op.a],
            op.granted === null ? "" : AMOUNTS[op.granted],
            op.tolerant ? "1" : undefined,
          ],
        );
      case "void":
        return call(
          "void",
          [this.account(op.a), this.expiry(op.a), this.record(op.h), this.settled(op.a)],
          [
            HOLDS[op.h],
            "60000",
            ACCOUNTS[op.a],
            op.granted === null ? "" : AMOUNTS[op.granted],
            op.tolerant ? "1" : undefined,
          ],
        );
      case "unreserve":
        return call(
          "unreserve",
          [this.account(op.a), this.expiry(op.a), this.record(op.h)],
          [
            HOLDS[op.h],
            AMOUNTS[op.amount],
            ACCOUNTS[op.a],
            `t${op.token + 1}`,
            "660000",
            op.tolerant ? "1" : undefined,
          ],
        );
      case "setLimit":
        return call(
          "setLimit",
          [this.account(op.a)],
          op.rolling
            ? [LIMITS[op.limit], "rolling", op.windowMs ?? String(DAY), "", ""]
            : [LIMITS[op.limit], "none", "", "", ""],
        );
      case "endPeriod":
        // A calendar period that ended long ago: every script answers {-9, …} until rolled.
        return this.redis.hset(
          this.account(op.a),
          "pevery",
          "day",
          "pzone",
          "UTC",
          "pstart",
          "0",
          "pend",
          "1",
        );
      case "rollPeriod": {
        const start = Math.floor(Date.now() / DAY) * DAY;
        return call("rollPeriod", [this.account(op.a)], ["day", "UTC", String(start), String(start + DAY)]);
      }
      case "expire": {
        // The hold's expiry passed (deterministically: its score set to 1), and maybe "due" too.
        const members = await this.redis.zrange(this.expiry(op.a), 0, -1);
        for (const member of members) {
          if (member.endsWith(`|${HOLDS[op.h]}`)) await this.redis.zadd(this.expiry(op.a), "XX", 1, member);
        }
        if (op.due && (await this.redis.hexists(this.account(op.a), "due"))) {
          await this.redis.hset(this.account(op.a), "due", "1");
        }
        return members.length;
      }
      case "evict":
        return this.redis.del(this.record(op.h));
    }
  }

  /** Every key of the world, its prefix stripped, server times normalised. */
  async state(): Promise<Record<string, unknown>> {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${this.prefix}:*`, "COUNT", 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== "0");
    const out: Record<string, unknown> = {};
    // "due" against the first live expiry of its account: never after it (a sweep would miss
    // that hold). Equal or before depends on which milliseconds two calls fell in, so not kept.
    const firstLive = async (hashKey: string) => {
      const expiryKey = hashKey.replace(`${this.prefix}:a:`, `${this.prefix}:e:`);
      const first = await this.redis.zrangebyscore(expiryKey, "(1", "+inf", "WITHSCORES", "LIMIT", 0, 1);
      return first[1] === undefined ? undefined : Number(first[1]);
    };
    for (const key of found.sort()) {
      const name = key.slice(this.prefix.length);
      const type = await this.redis.type(key);
      const pttl = await this.redis.pttl(key);
      // Record TTLs are whole minutes; a run lasts seconds.
      const ttl = pttl < 0 ? pttl : Math.round(pttl / 30_000);
      if (type === "hash") {
        const fields = await this.redis.hgetall(key);
        const first = await firstLive(key);
        for (const [field, value] of Object.entries(fields)) {
          if (field === "due") {
            const due = Number(value);
            fields[field] =
              value === "1"
                ? "1"
                : first === undefined
                  ? "no live hold"
                  : due <= first
                    ? "<=first"
                    : ">first";
          }
          if (field.startsWith("u:")) fields[field] = value.replace(/^\d+\|/, "T|");
        }
        out[name] = { type, ttl, fields };
      } else if (type === "zset") {
        const scored = await this.redis.zrange(key, 0, -1, "WITHSCORES");
        const members: string[] = [];
        for (let i = 0; i < scored.length; i += 2) {
          const score = scored[i + 1] as string;
          members.push(`${scored[i]}@${name.startsWith(":s:") ? "T" : score === "1" ? "1" : "T"}`);
        }
        // Sorted: the score order of two holds depends on whether they fell in one millisecond.
        out[name] = { type, ttl, members: members.sort() };
      } else {
        out[name] = { type, ttl, value: await this.redis.get(key) };
      }
    }
    return out;
  }
}

/** -9 replies carry the server's now: the same for both worlds up to that. */
function normalised(reply: unknown): unknown {
  if (Array.isArray(reply) && reply[0] === -9) return [-9, "T", ...reply.slice(2)];
  return reply;
}

const reserveOp = (h: number, amount: number, tolerant = false): Op => ({
  op: "reserve",
  h,
  a: 0,
  amount,
  ttl: 0,
  token: 1,
  tolerant,
});

let runs = 0;
const tally = new Map<string, number>();
afterAll(() => {
  if (process.env.LEAN_ADV_TALLY) console.log([...tally].sort());
});

describe("lean reserve/commit scripts: the same replies and keys as before the refactor", () => {
  it(
    "random sequences of every script and of expiry, eviction and periods",
    // 22 s beside a CI run on two cores; a more loaded machine takes several times that.
    { timeout: 300_000 },
    async () => {
      const redis = await connected;
      const [pre, lean] = await Promise.all([load(redis, true), load(redis, false)]);
      expect(pre.reserve).not.toBe(lean.reserve);
      expect(pre.commit).not.toBe(lean.commit);
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArb, { minLength: 1, maxLength: 60, size: "max" }),
          fc.nat({ max: 3 }),
          async (tail, limit) => {
            // Both accounts start with a limit (most reserves would be denied without one).
            const ops: Op[] = [
              { op: "setLimit", a: 0, limit, rolling: false },
              { op: "setLimit", a: 1, limit: (limit + 1) % LIMITS.length, rolling: false },
              ...tail,
            ];
            runs++;
            const a = new World(redis, `${keyPrefix}:${runs}:pre`, pre);
            const b = new World(redis, `${keyPrefix}:${runs}:lean`, lean);
            try {
              for (const [i, op] of ops.entries()) {
                const [ra, rb] = [await a.run(op), await b.run(op)];
                expect({ i, op, reply: normalised(rb) }).toEqual({ i, op, reply: normalised(ra) });
                expect(await b.state()).toEqual(await a.state());
                if (process.env.LEAN_ADV_TALLY) {
                  const kind = `${op.op} ${JSON.stringify(Array.isArray(ra) ? ra[0] : typeof ra === "string" ? ra.slice(0, 40) : typeof ra)}`;
                  tally.set(kind, (tally.get(kind) ?? 0) + 1);
                }
              }
            } finally {
              await deleteByPrefix(redis, a.prefix);
              await deleteByPrefix(redis, b.prefix);
            }
          },
        ),
        {
          numRuns: 150,
          // The branches random runs rarely take (account 0's limit is 10).
          examples: [
            // Tolerant: the record evicted, the hold still counted, room left: a retry ({2, …}).
            [[reserveOp(0, 0, true), { op: "evict", h: 0 }, reserveOp(0, 0, true)], 1],
            // The same with no room left: recognised by its member.
            [[reserveOp(0, 2, true), { op: "evict", h: 0 }, reserveOp(1, 1), reserveOp(0, 2, true)], 1],
            // A retry after expiry when the limit has dropped meanwhile: released, then denied.
            [
              [
                reserveOp(0, 1),
                { op: "expire", h: 0, a: 0, due: false },
                { op: "setLimit", a: 0, limit: 0, rolling: false },
                reserveOp(0, 1),
              ],
              1,
            ],
          ],
          ...(process.env.LEAN_ADV_SEED
            ? { seed: Number(process.env.LEAN_ADV_SEED), path: process.env.LEAN_ADV_PATH }
            : {}),
        },
      );
    },
  );
});

describe("lean reserve/commit scripts: the same as before with real expiry and a real rolling window", () => {
  it("sweeps expired holds, holds an expired retry again, drops commits out of the window", async () => {
    const redis = await connected;
    const [pre, lean] = await Promise.all([load(redis, true), load(redis, false)]);
    const a = new World(redis, `${keyPrefix}:real:pre`, pre);
    const b = new World(redis, `${keyPrefix}:real:lean`, lean);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const reserve = (h: number, amount: number, ttlMs: string, tolerant = false): Op => ({
      op: "reserve",
      h,
      a: 0,
      amount,
      ttl: 0,
      token: 1,
      tolerant,
      ttlMs,
    });
    const commit = (h: number, actual: string, tolerant = false): Op => ({
      op: "commit",
      h,
      a: 0,
      actual,
      granted: null,
      tolerant,
    });
    // Each step runs at least 1 s from every expiry and window edge (t = step start, ms: 0, 4,000,
    // 8,000, 8,300, 11,300), so both worlds see the same on a loaded machine, whose sleeps overshoot: a
    // step late by under a second changes nothing. (With 250 ms margins, a loaded CI run once
    // saw h2's commit leave the window before step 3.)
    const steps: { wait: number; ops: Op[] }[] = [
      // Limit 25, a rolling window of 6 s (buckets of 60 ms).
      { wait: 0, ops: [{ op: "setLimit", a: 0, limit: 2, rolling: true, windowMs: "6000" }] },
      {
        wait: 0,
        ops: [
          reserve(0, 2, "1000"),
          reserve(1, 1, "1500", true),
          commit(1, "3", true),
          reserve(2, 1, "20000"),
        ],
      },
      // t 4,000: h0 expired at 1,000 (and due): swept; its retry is held again (until 5,000); h2
      // still counted; h1's commit (t 0) still in the window.
      { wait: 4_000, ops: [reserve(3, 1, "20000"), reserve(0, 2, "1000"), commit(2, "7")] },
      // t 8,000: h0 expired again, committed in full anyway; h1's commit left the window at 6,000;
      // h2's (t 4,000) is in it until 10,000.
      // h3's commit waits 300 ms: two commits of one step fall in one 60 ms bucket (one queue entry)
      // or in two, as the clock goes, and the worlds, run one op apart, could differ (a loaded CI
      // run once saw that): so no step commits twice.
      { wait: 4_000, ops: [commit(0, "7"), reserve(4, 2, "20000", true)] },
      { wait: 300, ops: [commit(3, "1", true)] },
      // t 11,300: h2's commit is out.
      { wait: 3_000, ops: [reserve(1, 1, "1500", true), commit(4, "0", true)] },
    ];
    const seen: unknown[] = [];
    try {
      for (const [i, step] of steps.entries()) {
        await sleep(step.wait);
        for (const op of step.ops) {
          const [ra, rb] = [await a.run(op), await b.run(op)];
          expect({ i, op, reply: normalised(rb) }).toEqual({ i, op, reply: normalised(ra) });
          seen.push(ra);
        }
        expect({ i, state: await b.state() }).toEqual({ i, state: await a.state() });
      }
      // Limit 25. h0 7 (18 left), h1 3 (15), commit 3, h2 3 (12) | h0 swept: h3 3 (16), h0 held again
      // (9), commit h2 7 | h0 expired, committed 7 (h1's 3 out of the window: spent 14), h4 7 (1),
      // commit h3 1 | h2's 7 out: h1 resolved before ({3, 25 - 8 - 7}), commit h4 0.
      expect(seen).toEqual([[1], 18, 15, "3", 12, 16, 9, "7", "7", 1, "1", [3, 10], "0"]);
    } finally {
      await deleteByPrefix(redis, a.prefix);
      await deleteByPrefix(redis, b.prefix);
    }
  });
});

const CHILD = fileURLToPath(new URL("./support/lean-child.mjs", import.meta.url));

function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`)),
    );
  });
}

describe("lean reserve/commit scripts under concurrency (child processes, same holdIds)", () => {
  it("grants each hold once, resolves it once, never passes the limit", { timeout: 60_000 }, async () => {
    const redis = await connected;
    const lean = await load(redis, false);
    const prefix = `${keyPrefix}:conc`;
    const limit = 200;
    for (const account of ["x", "y|z"]) {
      await redis.evalsha(lean.setLimit, 1, `${prefix}:a:{${account}}`, String(limit), "none", "", "", "");
    }
    const outputs = await Promise.all(
      [1, 2, 3, 4].map((seed) =>
        runChild([REDIS_URL, prefix, lean.reserve, lean.commit, lean.void, String(seed), "400"]),
      ),
    );
    const events = outputs.flatMap((out) =>
      out
        .split("\n")
        .filter(Boolean)
        .map(
          (line) =>
            JSON.parse(line) as {
              kind: string;
              account: string;
              holdId: string;
              amount: string;
              reply: unknown;
            },
        ),
    );
    const errors = events.filter((e) => typeof e.reply === "string" && e.reply.startsWith("ERR"));
    expect(errors).toEqual([]);
    for (const account of ["x", "y|z"]) {
      const mine = events.filter((e) => e.account === account);
      // A new grant answers a plain integer: once per holdId.
      const granted = mine.filter((e) => e.kind === "reserve" && typeof e.reply === "number");
      const grantedIds = granted.map((e) => e.holdId);
      expect(new Set(grantedIds).size).toBe(grantedIds.length);
      const committed = new Map<string, string>();
      let voided = 0;
      for (const e of mine) {
        if (e.kind === "commit" && typeof e.reply === "string") {
          const before = committed.get(e.holdId);
          if (before !== undefined) expect(e.reply).toBe(before);
          committed.set(e.holdId, e.reply);
        }
        if (e.kind === "void" && e.reply === 1) voided++;
      }
      const hash = await redis.hgetall(`${prefix}:a:{${account}}`);
      const members = await redis.zrange(`${prefix}:e:{${account}}`, 0, -1);
      const heldByMembers = members.reduce((sum, m) => sum + Number(m.split("|")[0]), 0);
      const spent = [...committed.values()].reduce((sum, v) => sum + Number(v), 0);
      expect(Number(hash.held ?? 0)).toBe(heldByMembers);
      expect(Number(hash.spent ?? 0)).toBe(spent);
      expect(Number(hash.spent ?? 0) + Number(hash.held ?? 0)).toBeLessThanOrEqual(limit);
      // Every granted hold is either still counted, committed, or voided.
      const open = new Set(members.map((m) => m.slice(m.indexOf("|") + 1)));
      for (const id of grantedIds) {
        expect(open.has(id) || committed.has(id) || voided > 0).toBe(true);
      }
      expect(granted.length).toBeGreaterThan(0);
    }
    await deleteByPrefix(redis, prefix);
  });
});

describe("hostile inputs through RedisQuota (the scripts trust their ARGV: the client checks it)", () => {
  it("refuses amounts Lua's tonumber would read oddly, before any write", async () => {
    const redis = await connected;
    const prefix = `${keyPrefix}:hostile`;
    const quota = new RedisQuota(redis, { keyPrefix: prefix });
    await quota.setLimit("acc", 100);
    // "0x10", "1e3", " 5" read as 16, 1000, 5 by tonumber and refused by HINCRBY: a hold counted
    // in the sorted set but not in `held`, whose sweep then fails on every reserve.
    for (const amount of ["0x10", "1e3", " 5", -5, 0, 1.5, 2 ** 53, Number.NaN]) {
      await expect(
        quota.reserve({
          holdId: `h-${String(amount)}`,
          account: "acc",
          amount: amount as number,
          ttlMs: 60_000,
        }),
      ).rejects.toBeInstanceOf(LatchValidationError);
    }
    for (const id of ["\uD800", "lone\uDFFFlow", "nul\u0000id"]) {
      await expect(
        quota.reserve({ holdId: id, account: "acc", amount: 1, ttlMs: 60_000 }),
      ).rejects.toBeInstanceOf(LatchValidationError);
    }
    expect(await quota.balance("acc")).toMatchObject({ limit: 100, spent: 0, held: 0 });
    await deleteByPrefix(redis, prefix);
  });

  it("holds and commits holdIds and accounts with '|' (the record separator), up to 2^53-1", async () => {
    const redis = await connected;
    const prefix = `${keyPrefix}:separators`;
    const quota = new RedisQuota(redis, { keyPrefix: prefix });
    const max = Number.MAX_SAFE_INTEGER;
    for (const account of ["a|b", "|", "held|1|t|x"]) {
      await quota.setLimit(account, max);
      const ids = ["x|1", "1|x", "|", "||"];
      for (const [i, holdId] of ids.entries()) {
        const amount = i === 0 ? max - ids.length : 1;
        expect(await quota.reserve({ holdId, account, amount, ttlMs: 60_000 })).toMatchObject({
          granted: true,
        });
        // A retry is the same grant, held once.
        expect(await quota.reserve({ holdId, account, amount, ttlMs: 60_000 })).toMatchObject({
          granted: true,
        });
      }
      expect(await quota.balance(account)).toMatchObject({ held: max - 1, spent: 0 });
      expect(await quota.reserve({ holdId: "over", account, amount: 2, ttlMs: 60_000 })).toMatchObject({
        granted: false,
      });
      expect(await quota.commit("x|1", max - ids.length)).toEqual({ committed: max - ids.length });
      expect(await quota.commit("x|1", max - ids.length)).toEqual({ committed: max - ids.length });
      await quota.void("|");
      expect(await quota.balance(account)).toMatchObject({ held: ids.length - 2, spent: max - ids.length });
      expect(await quota.commit("1|x", 1)).toEqual({ committed: 1 });
      await quota.void("||");
      expect(await quota.balance(account)).toMatchObject({ held: 0, spent: max - ids.length + 1 });
      await deleteByPrefix(redis, prefix);
    }
  });
});
