--[[
  Sets an account's limit and its budget period (see includes/period). (A limit alone,
  the period kept, is a plain HSET.) A changed period keeps spent until its first reset; a rolling window
  counts it as committed now. The same period again changes nothing but the limit.

  Input:
    KEYS[1] account: account hash (limit, spent; period fields, see includes/period)

    ARGV[1] limit: integer string >= 0
    ARGV[2] mode: none | day | week | month | rolling
    ARGV[3] zone: the IANA time zone (calendar), or the window in ms (rolling), else ""
    ARGV[4] start: a calendar period's first ms for the client's idea of now, else ""
    ARGV[5] end: the ms after its last, else ""

  Output:
     {1}          done
    {-9, now, mode, zone}  the calendar bounds do not contain the server's now: nothing is
                 written; compute them for `now` and call again
    {-10, field}  an argument is not valid (field: period.every for an unknown mode,
                 period.rollingMs for a window outside 1 s to 366 days, period.start or
                 period.end for bounds that are not a calendar period of at most 33 days):
                 nothing is written
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/period"

local mode = ARGV[2]
local now = nowMs()
local calendar = mode == "day" or mode == "week" or mode == "month"
if calendar then
  local bad = badBounds(ARGV[4], ARGV[5])
  if bad then
    return bad
  end
elseif mode == "rolling" then
  if not isMs(ARGV[3]) or tonumber(ARGV[3]) < 1000 or tonumber(ARGV[3]) > 366 * 86400000 then
    return {-10, "period.rollingMs"}
  end
elseif mode ~= "none" then
  return {-10, "period.every"}
end
if calendar and (now < tonumber(ARGV[4]) or now >= tonumber(ARGV[5])) then
  return {-9, integerString(now), mode, ARGV[3]}
end
rcall("HSET", KEYS[1], "limit", ARGV[1])
local v = rcall("HMGET", KEYS[1], "pevery", "pzone", "proll", "pend")
if calendar and v[1] == mode and v[2] == ARGV[3] then
  return {1}
end
if mode == "rolling" and v[3] == ARGV[3] then
  return {1}
end
if mode == "none" and not v[1] and not v[3] then
  return {1}
end
-- The old period's spend is kept: a calendar one that ended is rolled first (spent 0).
if v[4] and now >= tonumber(v[4]) then
  rcall("HSET", KEYS[1], "spent", "0")
end
rollWindow(KEYS[1], now, v[3])
dropUsage(KEYS[1])
rcall("HDEL", KEYS[1], "pevery", "pzone", "pstart", "pend", "proll")
if calendar then
  rcall("HSET", KEYS[1], "pevery", mode, "pzone", ARGV[3], "pstart", ARGV[4], "pend", ARGV[5])
elseif mode == "rolling" then
  rcall("HSET", KEYS[1], "proll", ARGV[3])
  local spent = rcall("HGET", KEYS[1], "spent")
  if spent and tonumber(spent) > 0 then
    recordUsage(KEYS[1], now, spent, ARGV[3])
  end
end
return {1}
