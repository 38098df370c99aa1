// A child process of lean-scripts-adversarial.test.ts: reserves, commits and voids holds that
// other children touch at the same time (holdId n: account and amount fixed by n), printing
// one JSON line per call. Args: url prefix reserveSha commitSha voidSha seed count.
import { Redis } from "ioredis";

const [url, prefix, reserveSha, commitSha, voidSha, seedArg, countArg] = process.argv.slice(2);
// mulberry32: exact in 32-bit integer arithmetic.
let seed = Number(seedArg) * 7919;
const random = (n) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const redis = new Redis(url);
const granted = new Set();
const keys = (n) => {
  const account = n % 2 === 0 ? "x" : "y|z";
  return {
    account,
    a: `${prefix}:a:{${account}}`,
    e: `${prefix}:e:{${account}}`,
    s: `${prefix}:s:{${account}}`,
  };
};
const call = (sha, k, args) =>
  redis.evalsha(sha, k.length, ...k, ...args).catch((error) => `ERR ${error.message}`);
for (let i = 0; i < Number(countArg); i++) {
  const n = random(60);
  const holdId = `h|${n}`;
  const amount = String((n % 9) + 1);
  const k = keys(n);
  const record = `${prefix}:r:${holdId}`;
  const tolerant = n % 3 === 0;
  const kind = ["reserve", "reserve", "commit", "void"][random(4)];
  let reply;
  if (kind === "reserve") {
    reply = await call(
      reserveSha,
      [k.a, k.e, record],
      [holdId, amount, "600000", "660000", k.account, `t${seedArg}-${i}`, ...(tolerant ? ["60000"] : [])],
    );
    if (typeof reply === "number" || (Array.isArray(reply) && reply[0] === 2)) granted.add(holdId);
  } else if (kind === "commit") {
    const actual = String(random(Number(amount) + 1));
    reply = await call(
      commitSha,
      [k.a, k.e, record, k.s],
      [holdId, actual, "60000", k.account, granted.has(holdId) ? amount : "", ...(tolerant ? ["1"] : [])],
    );
  } else {
    reply = await call(
      voidSha,
      [k.a, k.e, record, k.s],
      [holdId, "60000", k.account, granted.has(holdId) ? amount : "", ...(tolerant ? ["1"] : [])],
    );
    if (Array.isArray(reply)) reply = reply[0];
  }
  process.stdout.write(`${JSON.stringify({ kind, account: k.account, holdId, amount, reply })}\n`);
}
await redis.quit();
