--[[
  Commits a hold: charges the actual amount (in full, even above the hold or after it
  expired) and releases the hold if it is still counted. Each hold resolves once.

  It does not sweep the account's other expired holds: releasing them changes only `held`,
  which nothing here reads, and every script that reads it (reserve, balance) sweeps first.

  A caller that granted the hold itself, within the retention, passes its amount (ARGV[5]):
  then a record that is gone (evicted by a maxmemory-policy, lost in a failover) is charged
  as a hold of that amount, not answered "unknown". With ARGV[6], a resolved hold's settled
  marker stands in for an evicted record, so a retried commit is never charged twice.

  The actual amount is charged to the period it is committed in: a calendar period that has
  ended is rolled first (the script answers {-9, …} and writes nothing), and on a rolling
  window the commit is added to the bucket of the server's time (see includes/period).

  Input:
    KEYS[1] account: account hash (limit, spent, held; settled markers "settled:<holdId>";
            period fields, see includes/period)
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] record: hold record (string "<state>|<amount>|<actual>|<account>")
    KEYS[4] settled: settled index (sorted set: holdId scored by resolution time ms; only with ARGV[6])

    ARGV[1] holdId
    ARGV[2] actual: the actual amount, integer string >= 0
    ARGV[3] retentionMs: retention of the resolved hold record in ms, integer string
    ARGV[4] account: the account of KEYS[1] and KEYS[2]
    ARGV[5] grantedAmount: the hold's amount when this caller granted it (integer string), else ""
    ARGV[6] keepSettled?: "1" to keep a settled marker (see includes/holds)

  Output:
     committed       committed now, or a retry of the same commit (charged once): the actual
                     amount as stored, a plain string reply (not an array: cheaper to reply)
    {-1, stored}     idempotency conflict: committed before with another actual amount
    {-2}             unknown hold (also one taken back: a tombstone, see unreserve-3.lua)
    {-3, state}      hold already resolved (voided)
    {-4}             overflow: spent would pass 2^53-1; nothing changes
    {-7, owner}      the record belongs to account `owner`, not ARGV[4] (the caller's idea of
                     the account was stale): nothing is written; call again with owner's keys
    {-9, now, every, zone}  the account's calendar period ended at the server time `now`:
                     nothing is written; roll it (rollPeriod-1.lua) and call again
]]
local rcall = redis.call

-- The includes' functions, for the cases the common one (a hold of an account with no period,
-- no settled markers) does not take: built on first use, as creating their closures on every
-- call costs about as much as one of the script's commands.
local lib
local function library()
  if not lib then
    --- @include "includes/clock"
    --- @include "includes/holds"
    --- @include "includes/period"
    lib = {
      nowMs = nowMs,
      keepSettled = keepSettled,
      settled = SETTLED,
      periodDue = periodDue,
      rollWindow = rollWindow,
      recordUsage = recordUsage,
    }
  end
  return lib
end

local stored = rcall("GET", KEYS[3])
if not stored then
  if ARGV[6] then
    stored = rcall("HGET", KEYS[1], library().settled .. ARGV[1])
  end
  if not stored then
    if ARGV[5] == "" then
      return {-2}
    end
    stored = "held|" .. ARGV[5] .. "||" .. ARGV[4]
  end
end
-- includes/holds' splitHold (inline: the common case needs no includes).
local state, amount, actual, owner = string.match(stored, "^([^|]*)|([^|]*)|([^|]*)|(.*)$")
if state == "abandoned" then
  return {-2} -- taken back (see unreserve-3.lua): as unknown
end
if owner ~= ARGV[4] then
  return {-7, owner}
end
if state == "committed" then
  if actual ~= ARGV[2] then
    return {-1, actual}
  end
  return actual
end
if state == "voided" then
  return {-3, "voided"}
end

-- "held", possibly past its expiry: the call happened, so its usage is charged in full, to
-- the current period. Only a period needs the server's time.
local p = rcall("HMGET", KEYS[1], "pend", "proll", "spent")
local spent = p[3]
local now
if p[1] or p[2] then
  local L = library()
  now = L.nowMs()
  local ended = L.periodDue(KEYS[1], now, p[1])
  if ended then
    return ended
  end
  if L.rollWindow(KEYS[1], now, p[2]) then
    spent = rcall("HGET", KEYS[1], "spent")
  end
end
if (tonumber(spent) or 0) + tonumber(ARGV[2]) > 9007199254740991 then
  return {-4}
end
-- includes/holds' releaseHold (inline). (One HSET of held and spent computed here was
-- measured no cheaper than these two HINCRBY, which stay exact whatever the fields hold.)
if rcall("ZREM", KEYS[2], amount .. "|" .. ARGV[1]) == 1 then
  rcall("HINCRBY", KEYS[1], "held", "-" .. amount)
end
rcall("HINCRBY", KEYS[1], "spent", ARGV[2])
if p[2] and tonumber(ARGV[2]) > 0 then
  library().recordUsage(KEYS[1], now, ARGV[2], p[2])
end
local record = "committed|" .. amount .. "|" .. ARGV[2] .. "|" .. ARGV[4]
rcall("SET", KEYS[3], record, "PX", ARGV[3])
if ARGV[6] then
  library().keepSettled(KEYS[1], KEYS[4], ARGV[1], record, ARGV[3])
end
return ARGV[2]
