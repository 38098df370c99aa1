--[[
  Reads an account's balance after releasing its expired holds and rolling its period.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due; period fields, see includes/period)
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)

  Output:
    {limit, spent, held, periodStart, periodEnd}  integer strings (the stored text, never a Lua
                 double); the period's bounds in ms (a rolling window: from the first
                 instant of its oldest bucket still counted to now), "" without a period
    {-9, now, every, zone}  the account's calendar period ended at the server time `now`:
                 nothing is written; roll it (rollPeriod-1.lua) and call again
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"
--- @include "includes/period"

local now = nowMs()
local v = rcall("HMGET", KEYS[1], "limit", "spent", "held", "due", "pend", "proll", "pstart")
local ended = periodDue(KEYS[1], now, v[5])
if ended then
  return ended
end
local periodStart, periodEnd = v[7] or "", v[5] or ""
if v[6] then
  -- The first instant of the oldest bucket still counted (core's quotaPeriodBounds).
  local first = now - tonumber(v[6]) + 1
  local width = math.ceil(tonumber(v[6]) / 100)
  periodStart, periodEnd = integerString(first - (first % width)), integerString(now)
end
local rolled = rollWindow(KEYS[1], now, v[6])
if sweepExpired(KEYS[1], KEYS[2], now, v[4]) or rolled then
  v = rcall("HMGET", KEYS[1], "limit", "spent", "held")
end
return {v[1] or "0", v[2] or "0", v[3] or "0", periodStart, periodEnd}
