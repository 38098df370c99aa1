--[[
  Holds. Needs includes/clock. An account's active holds live in one sorted set: member "<amount>|<holdId>", scored
  by the hold's expiry in ms. Membership is the single source of truth for "counted in held":
  whoever removes a member releases its amount, so a hold is released exactly once, by void,
  commit or expiry, whichever comes first.

  A hold's record is one string key (set with its TTL in the same command):
  "<state>|<amount>|<actual>|<account>", state held, committed or voided; amounts are integer
  strings, so "|" never occurs inside them, and the account (any text) comes last. While held,
  the <actual> field is the token of the reserve call that created it (or "" once another call
  answered it; see reserve-3.lua), and a hold taken back leaves a tombstone "abandoned|…" that
  counts as no record (see unreserve-3.lua). On a
  standalone server the record key is the holdId's own (one per holdId, whichever account
  holds it), so the stored account is also the holdId's locator; on a Cluster it is one key
  per account and holdId, in the account's slot. The amount identifies a reserve request of
  that account, and the actual amount a commit.
]]
-- (commit-4.lua's common path matches the same pattern inline: keep them in step.)
local function splitHold(value)
  return {string.match(value, "^([^|]*)|([^|]*)|([^|]*)|(.*)$")}
end

-- amount is the integer string stored with the hold: it is never converted to a number.
-- (commit-4.lua's common path does the same inline: keep them in step.)
local function releaseHold(accountKey, expiryKey, holdId, amount)
  if rcall("ZREM", expiryKey, amount .. "|" .. holdId) == 1 then
    rcall("HINCRBY", accountKey, "held", "-" .. amount)
    return true
  end
  return false
end

-- The account hash's field "due" is the time (ms, server clock) from which a sweep of expired
-- holds is due: no hold in the sorted set expires before it (it may be earlier than the first
-- expiry, as releasing a hold never moves it; it only errs towards sweeping). Absent, a sweep
-- is due at once. A script that finds now < due skips the sweep; a sweep sets it to the first
-- expiry left (or removes it when no hold is left), and a new hold that expires before it
-- moves it to its own expiry.
--
-- Releases up to 1000 expired holds per sweep (bounded work per script; the rest follow on
-- the next call, and until then they are still counted, which errs towards denying).
-- Returns whether it swept, and the due time after it (a number, or nil when no hold is left).
local function sweepExpired(accountKey, expiryKey, now, due)
  if due and now < tonumber(due) then
    return false, tonumber(due)
  end
  local expired = rcall("ZRANGEBYSCORE", expiryKey, "-inf", integerString(now), "LIMIT", 0, 1000)
  for _, member in ipairs(expired) do
    rcall("ZREM", expiryKey, member)
    rcall("HINCRBY", accountKey, "held", "-" .. string.match(member, "^(%d+)|"))
  end
  local first = rcall("ZRANGE", expiryKey, 0, 0, "WITHSCORES")[2]
  if first then
    rcall("HSET", accountKey, "due", first)
    return true, tonumber(first)
  end
  if due then
    rcall("HDEL", accountKey, "due")
  end
  return true, nil
end

-- max(0, limit - spent - held) of HMGET's {limit, spent, held}. Each field is a safe integer,
-- so doubles hold them exactly, and a result below -2^53 (inexact) is clamped to 0 anyway.
-- (reserve-3.lua's common path computes the same inline: keep them in step.)
local function roomOf(v)
  local room = (tonumber(v[1]) or 0) - (tonumber(v[2]) or 0) - (tonumber(v[3]) or 0)
  if room < 0 then
    return 0
  end
  return room
end

-- Settled markers, kept only when the caller asks (RedisQuota's allowEvictingPolicy): a copy of
-- a resolved hold's record in the account's hash (field SETTLED .. holdId), which has no TTL, so
-- a volatile-* maxmemory-policy never evicts it, unlike the record (a key with a TTL). The
-- account's settled index (a sorted set: holdId scored by the resolution time, ms) orders them
-- for the purge: markers older than the retention are deleted, up to 100 per call.
local SETTLED = "settled:"

local function keepSettled(accountKey, indexKey, holdId, record, retention)
  local now = nowMs()
  rcall("HSET", accountKey, SETTLED .. holdId, record)
  rcall("ZADD", indexKey, integerString(now), holdId)
  local old = rcall("ZRANGEBYSCORE", indexKey, "-inf", integerString(now - tonumber(retention)), "LIMIT", 0, 100)
  for _, id in ipairs(old) do
    rcall("HDEL", accountKey, SETTLED .. id)
  end
  if #old > 0 then
    rcall("ZREMRANGEBYRANK", indexKey, 0, #old - 1)
  end
end
