import { LatchError } from "@latch/core";
import { type Cluster, Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { connectCluster, runPrefix } from "./support/redis.js";
import { type OwnedCluster, ownedCluster } from "./support/servers.js";
import { keySlot } from "./support/slots.js";

// A Cluster of 3 masters, each with a replica, that this file starts on spare loopback ports
// and tears down: a slot is moved between masters under a waiting call, then a master is
// killed (SIGKILL) mid-run and its replica takes over. `cluster-node-timeout` is 3 s so the
// failover takes seconds, longer than the quota's deadline, and `cluster-require-full-coverage no` lets the other masters serve
// their slots meanwhile (with the default `yes`, every node answers CLUSTERDOWN until the
// failover ends; quota calls then wait within their deadline, see the README).
const keyPrefix = runPrefix("failover");
const keys = new KeySpace(keyPrefix);
const started: Promise<{ nodes: OwnedCluster; cluster: Cluster; admins: Map<number, Redis> }> = ownedCluster(
  3,
  {
    replicasPerMaster: 1,
    nodeTimeoutMs: 3_000,
  },
).then(async (nodes) => {
  const admins = new Map<number, Redis>();
  try {
    for (const port of nodes.ports) {
      const admin = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0 });
      admin.on("error", () => {});
      await admin.connect();
      await admin.config("SET", "cluster-require-full-coverage", "no");
      admins.set(port, admin);
    }
    return { nodes, cluster: await connectCluster(nodes.ports, 1_000), admins };
  } catch (error) {
    for (const admin of admins.values()) admin.disconnect();
    await nodes.dispose();
    throw error;
  }
});
started.catch(() => undefined); // reported by each test that awaits it

// The Cluster is this file's own and is shut down here, so its keys go with it: no key-by-key
// cleanup (a SCAN on a master that was killed waits for a node that never comes back).
afterAll(async () => {
  const ready = await started.catch(() => undefined);
  if (ready === undefined) return;
  ready.cluster.disconnect();
  for (const admin of ready.admins.values()) admin.disconnect();
  await ready.nodes.dispose();
}, 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Slot → port of the master serving it, as one node sees the Cluster now. */
async function slotMasters(admin: Redis): Promise<(slot: number) => number> {
  const ranges = (await admin.cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>;
  return (slot) => {
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (range === undefined) throw new Error(`slot ${slot} has no master`);
    return range[2][1];
  };
}

/** The first `count` names `<label>-<n>` whose key (built by `key`) hashes to a slot `wanted` accepts. */
function pick(
  label: string,
  count: number,
  key: (name: string) => string,
  wanted: (slot: number) => boolean,
): string[] {
  const found: string[] = [];
  for (let n = 0; found.length < count; n++) {
    const name = `${label}-${process.pid}-${n}`;
    if (wanted(keySlot(key(name)))) found.push(name);
  }
  return found;
}

/** Retries `attempt` until it resolves, at most ~30 s (the Cluster settles after a change). */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await sleep(100);
    }
  }
  throw last;
}

describe("RedisQuota on a Cluster that reshards and fails over", () => {
  it("computes slots as the Cluster does", async () => {
    const { cluster } = await started;
    for (const key of [
      keys.accountKeys("acme").account,
      keys.holdLocator("h-1"),
      "plain",
      "{}x",
      "a{b}c{d}",
    ]) {
      expect(keySlot(key)).toBe(await cluster.cluster("KEYSLOT", key));
    }
  });

  it("waits while its account's slot is migrating (TRYAGAIN) and answers once the slot has moved", async () => {
    const { nodes, cluster, admins } = await started;
    const quota = new RedisQuota(cluster, { keyPrefix, timeoutMs: 10_000 });
    const [account] = pick(
      "moving",
      1,
      (a) => keys.accountKeys(a).account,
      () => true,
    ) as [string];
    const { account: accountKey, expiry } = keys.accountKeys(account);
    const slot = keySlot(accountKey);
    // Another account in the same slot, for a call that gives up before the slot has moved.
    const [neighbour] = pick(
      "neighbour",
      1,
      (a) => keys.accountKeys(a).account,
      (s) => s === slot,
    ) as [string];
    await quota.setLimit(account, 100);
    await quota.setLimit(neighbour, 100);
    expect(await quota.reserve({ holdId: `${account}-1`, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 90,
    });
    const masterOf = await slotMasters(admins.get(nodes.ports[0] as number) as Redis);
    const sourcePort = masterOf(slot);
    const masterPorts = [...new Set(Array.from({ length: 3 }, (_, i) => masterOf(i * 5_461)))];
    const targetPort = masterPorts.find((port) => port !== sourcePort) as number;
    const [source, target] = [admins.get(sourcePort) as Redis, admins.get(targetPort) as Redis];
    const [sourceId, targetId] = [await source.cluster("MYID"), await target.cluster("MYID")];

    // Move the account's hash alone: its other keys are still on the source.
    await target.cluster("SETSLOT", slot, "IMPORTING", sourceId);
    await source.cluster("SETSLOT", slot, "MIGRATING", targetId);
    await source.migrate("127.0.0.1", targetPort, accountKey, 0, 5_000);
    await expect(source.eval("return 1", 2, accountKey, expiry)).rejects.toThrow(/^TRYAGAIN/);

    // A call whose deadline passes first fails closed; one with time left waits for the move.
    // (The client itself may still send the hurried one once the slot has moved, as ioredis
    // retries TRYAGAIN on its own: then its hold expires after its ttlMs, like any reserve that
    // timed out after reaching Redis.)
    const hurried = new RedisQuota(cluster, { keyPrefix, timeoutMs: 300 });
    await hurried.ready();
    expect(
      await hurried.reserve({ holdId: `${neighbour}-1`, account: neighbour, amount: 1, ttlMs: 100 }),
    ).toEqual({
      granted: false,
      reason: "unavailable",
    });
    const waiting = quota.reserve({ holdId: `${account}-2`, account, amount: 20, ttlMs: 60_000 });
    await sleep(500);
    for (;;) {
      const left = (await source.cluster("GETKEYSINSLOT", slot, 100)) as string[];
      if (left.length === 0) break;
      await source.migrate("127.0.0.1", targetPort, "", 0, 5_000, "KEYS", ...left);
    }
    for (const port of masterPorts) await admins.get(port)?.cluster("SETSLOT", slot, "NODE", targetId);
    expect(await waiting).toEqual({ granted: true, remaining: 70 });
    expect(await quota.commit(`${account}-1`, 5)).toEqual({ committed: 5 });
    expect(await quota.commit(`${account}-2`, 15)).toEqual({ committed: 15 });
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 20, held: 0, available: 80 });
    await sleep(2_000); // past ioredis's own TRYAGAIN retries (16 × 100 ms) and the hurried hold's TTL
    expect(await quota.balance(neighbour)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    expect(await target.hget(accountKey, "spent")).toBe("20");
  });

  it("denies reserves on a killed master's slots within the deadline while the others go on, and is exact after the failover", async () => {
    const { nodes, cluster, admins } = await started;
    const timeoutMs = 1_000;
    const quota = new RedisQuota(cluster, { keyPrefix, timeoutMs });
    await quota.ready();
    const masterOf = await slotMasters(admins.get(nodes.ports[0] as number) as Redis);
    const victim = masterOf(keySlot(keys.accountKeys("victim-probe").account));
    const replicaInfo = async (port: number) => (await admins.get(port)?.info("replication")) ?? "";
    let victimReplica = 0;
    for (const port of nodes.ports) {
      const info = await replicaInfo(port);
      if (info.includes("role:slave") && info.includes(`master_port:${victim}`)) victimReplica = port;
    }
    expect(victimReplica).not.toBe(0);

    // Accounts, and holdIds whose locators live on the same side: all on the victim, or none.
    const onVictim = (slot: number) => masterOf(slot) === victim;
    const elsewhere = (slot: number) => masterOf(slot) !== victim;
    type Side = "victim" | "other";
    const sides = {
      victim: pick("v-acct", 6, (a) => keys.accountKeys(a).account, onVictim),
      other: pick("o-acct", 6, (a) => keys.accountKeys(a).account, elsewhere),
    };
    const counters = { victim: 0, other: 0 };
    const wants = { victim: onVictim, other: elsewhere };
    /** The next holdId of a side: its locator's slot on the same side as the side's accounts. */
    const nextHoldId = (side: Side): string => {
      for (;;) {
        const holdId = `${side}-hold-${process.pid}-${counters[side]++}`;
        if (wants[side](keySlot(keys.holdLocator(holdId)))) return holdId;
      }
    };
    const limit = 1_000_000;
    for (const account of [...sides.victim, ...sides.other]) await quota.setLimit(account, limit);

    interface Outcome {
      side: Side;
      startedAt: number;
      endedAt: number;
      result: "granted" | "insufficient" | "unavailable";
    }
    const outcomes: Outcome[] = [];
    /** Granted holds and the actual amount each is to be charged. */
    const granted = new Map<string, { account: string; actual: number }>();
    let stop = false;
    const worker = async (side: Side, seed: number) => {
      for (let n = seed; !stop; n++) {
        const account = sides[side][n % sides[side].length] as string;
        const holdId = nextHoldId(side);
        const amount = 1 + (n % 5);
        const startedAt = performance.now();
        const r = await quota.reserve({ holdId, account, amount, ttlMs: 3_000 });
        outcomes.push({
          side,
          startedAt,
          endedAt: performance.now(),
          result: r.granted ? "granted" : r.reason,
        });
        if (r.granted) {
          const actual = amount - (n % 2);
          granted.set(holdId, { account, actual });
          // A commit the outage interrupts is settled after the failover (as reconcile would).
          await quota.commit(holdId, actual).catch((error: unknown) => {
            if (!LatchError.isInstance(error) || error.code !== "quota_unavailable") throw error;
          });
        } else {
          await sleep(20);
        }
      }
    };
    const workers = [0, 1, 2].flatMap((seed) => [worker("victim", seed), worker("other", seed)]);
    try {
      await sleep(1_000);
      await nodes.kill(victim);
      const killedAt = performance.now(); // the process is gone: nothing later reaches it
      // Watch the replica: the last moment it was still a replica, and when it took over.
      let lastReplicaAt = killedAt;
      let promotedAt: number | undefined;
      for (let i = 0; i < 600 && promotedAt === undefined; i++) {
        const info = await replicaInfo(victimReplica);
        if (info.includes("role:master")) promotedAt = performance.now();
        else lastReplicaAt = performance.now();
        await sleep(20);
      }
      expect(promotedAt).toBeDefined();
      // Run on until reserves on the victim's slots are granted again (the client learns the
      // new master), then a while longer.
      await eventually(async () => {
        const again = outcomes.some(
          (o) => o.side === "victim" && o.result === "granted" && o.startedAt > (promotedAt as number),
        );
        if (!again) throw new Error("no reserve on the failed-over slots granted yet");
      });
      await sleep(500);
      stop = true;
      await Promise.all(workers);

      const down = outcomes.filter((o) => o.startedAt > killedAt && o.startedAt < (promotedAt as number));
      const victimDown = down.filter((o) => o.side === "victim");
      const otherDown = down.filter((o) => o.side === "other");
      // The victim's slots: denied unavailable, each within the deadline (generous slack for
      // a loaded machine), or granted only after the replica took over.
      expect(victimDown.filter((o) => o.result === "unavailable").length).toBeGreaterThan(0);
      for (const o of victimDown) {
        if (o.result === "unavailable") expect(o.endedAt - o.startedAt).toBeLessThan(timeoutMs + 3_000);
        else
          expect({ result: o.result, afterTakeover: o.endedAt > lastReplicaAt }).toEqual({
            result: "granted",
            afterTakeover: true,
          });
      }
      // The other masters' slots went on: granted throughout, never unavailable.
      expect(otherDown.filter((o) => o.result === "granted").length).toBeGreaterThan(0);
      expect(otherDown.filter((o) => o.result !== "granted")).toEqual([]);

      // Settle every granted hold again (idempotent; a commit the outage cut off is charged
      // now), let the holds of reserves that timed out expire, and check every account exactly.
      for (const [holdId, { actual }] of granted) {
        expect(await eventually(() => quota.commit(holdId, actual))).toEqual({ committed: actual });
      }
      await sleep(3_500);
      const other = new RedisQuota(cluster, { keyPrefix, timeoutMs: 10_000 });
      for (const account of [...sides.victim, ...sides.other]) {
        const spent = [...granted.values()]
          .filter((g) => g.account === account)
          .reduce((sum, g) => sum + g.actual, 0);
        expect({ account, balance: await other.balance(account) }).toEqual({
          account,
          balance: { limit, spent, held: 0, available: limit - spent },
        });
      }
      // And the limit holds exactly on the promoted replica: room for 50 among 200 racing reserves.
      const account = sides.victim[0] as string;
      const { spent } = await other.balance(account);
      await other.setLimit(account, spent + 50);
      const race = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          other.reserve({ holdId: `race-${i}-${nextHoldId("victim")}`, account, amount: 1, ttlMs: 60_000 }),
        ),
      );
      expect(race.filter((r) => r.granted)).toHaveLength(50);
      expect(await other.balance(account)).toEqual({ limit: spent + 50, spent, held: 50, available: 0 });
    } finally {
      stop = true;
      await Promise.allSettled(workers);
    }
  });
});
