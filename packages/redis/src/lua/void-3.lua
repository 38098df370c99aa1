--[[
  Voids a hold: releases its amount. A second void, or a void after the hold expired, is a
  no-op (an expired hold stays committable, so late usage is never lost).

  It sweeps the account's expired holds first (when one is due), so a hold past its expiry is
  released as expired, not voided, and stays committable.

  Input:
    KEYS[1] account hash (limit, spent, held, due)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record (string "<state>|<amount>|<actual>|<account>")

    ARGV[1] holdId
    ARGV[2] retention of the resolved hold record in ms, integer string
    ARGV[3] account (of KEYS[1] and KEYS[2])

  Output:
     {1}         voided now
     {0}         no-op: already voided, or expired
    {-2}         unknown hold
    {-3, state}  hold already resolved (committed)
    {-7, owner}  the record belongs to account `owner`, not ARGV[3] (the caller's idea of the
                 account was stale): nothing is written; call again with owner's keys
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

local stored = rcall("GET", KEYS[3])
if not stored then
  return {-2}
end
local hold = splitHold(stored)
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
  rcall("SET", KEYS[3], "voided|" .. hold[2] .. "||" .. ARGV[3], "PX", ARGV[2])
  return {1}
end
return {0}
