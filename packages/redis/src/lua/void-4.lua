--[[
  Voids a hold: releases its amount. A second void, or a void after the hold expired, is a
  no-op (an expired hold stays committable, so late usage is never lost).

  It sweeps the account's expired holds first (when one is due), so a hold past its expiry is
  released as expired, not voided, and stays committable.

  A caller that granted the hold itself, within the retention, passes its amount (ARGV[4]):
  then a record that is gone (evicted, lost in a failover) is voided as a hold of that amount.
  With ARGV[5], a resolved hold's settled marker stands in for an evicted record.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due; settled markers "settled:<holdId>")
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] record: hold record (string "<state>|<amount>|<actual>|<account>")
    KEYS[4] settled: settled index (sorted set: holdId scored by resolution time ms; only with ARGV[5])

    ARGV[1] holdId
    ARGV[2] retentionMs: retention of the resolved hold record in ms, integer string
    ARGV[3] account: the account of KEYS[1] and KEYS[2]
    ARGV[4] grantedAmount: the hold's amount when this caller granted it (integer string), else ""
    ARGV[5] keepSettled?: "1" to keep a settled marker (see includes/holds)

  Output:
     {1}         voided now
     {0}         no-op: already voided, or expired
    {-2}         unknown hold (also one taken back: a tombstone, see unreserve-3.lua)
    {-3, state}  hold already resolved (committed)
    {-7, owner}  the record belongs to account `owner`, not ARGV[3] (the caller's idea of the
                 account was stale): nothing is written; call again with owner's keys
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

local stored = rcall("GET", KEYS[3])
if not stored then
  if ARGV[5] then
    stored = rcall("HGET", KEYS[1], SETTLED .. ARGV[1])
  end
  if not stored then
    if ARGV[4] == "" then
      return {-2}
    end
    stored = "held|" .. ARGV[4] .. "||" .. ARGV[3]
  end
end
local hold = splitHold(stored)
if hold[1] == "abandoned" then
  return {-2} -- taken back (see unreserve-3.lua): as unknown
end
if hold[4] ~= ARGV[3] then
  return {-7, hold[4]}
end
if hold[1] == "committed" then
  return {-3, "committed"}
end
sweepExpired(KEYS[1], KEYS[2], nowMs(), rcall("HGET", KEYS[1], "due"))
if hold[1] == "voided" then
  return {0}
end
if releaseHold(KEYS[1], KEYS[2], ARGV[1], hold[2]) then
  local record = "voided|" .. hold[2] .. "||" .. ARGV[3]
  rcall("SET", KEYS[3], record, "PX", ARGV[2])
  if ARGV[5] then
    keepSettled(KEYS[1], KEYS[4], ARGV[1], record, ARGV[2])
  end
  return {1}
end
return {0}
