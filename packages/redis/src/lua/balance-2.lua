--[[
  Reads an account's balance after releasing its expired holds.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due)
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)

  Output:
    {limit, spent, held}  integer strings (the stored text, never a Lua double)
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

local v = rcall("HMGET", KEYS[1], "limit", "spent", "held", "due")
if sweepExpired(KEYS[1], KEYS[2], nowMs(), v[4]) then
  v = rcall("HMGET", KEYS[1], "limit", "spent", "held")
end
return {v[1] or "0", v[2] or "0", v[3] or "0"}
