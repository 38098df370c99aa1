--[[
  Reads an account's balance after releasing its expired holds.

  Input:
    KEYS[1] account hash (limit, spent, held)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)

  Output:
    {limit, spent, held}  integer strings (the stored text, never a Lua double)
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

sweepExpired(KEYS[1], KEYS[2], nowMs())

local v = rcall("HMGET", KEYS[1], "limit", "spent", "held")
return {v[1] or "0", v[2] or "0", v[3] or "0"}
