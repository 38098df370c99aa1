--[[
  Voids a hold: releases its amount. A second void, or a void after the hold expired, is a
  no-op (an expired hold stays committable, so late usage is never lost).

  Input:
    KEYS[1] account hash (limit, spent, held)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record (string "<state>|<amount>|<actual>")

    ARGV[1] holdId
    ARGV[2] retention of the resolved hold record in ms, integer string

  Output:
     {1}         voided now
     {0}         no-op: already voided, or expired
    {-2}         unknown hold
    {-3, state}  hold already resolved (committed)
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

sweepExpired(KEYS[1], KEYS[2], nowMs())

local stored = rcall("GET", KEYS[3])
if not stored then
  return {-2}
end
local hold = splitHold(stored)
if hold[1] == "committed" then
  return {-3, "committed"}
end
if hold[1] == "voided" then
  return {0}
end
if releaseHold(KEYS[1], KEYS[2], ARGV[1], hold[2]) then
  rcall("SET", KEYS[3], "voided|" .. hold[2] .. "|", "PX", ARGV[2])
  return {1}
end
return {0}
