--[[
  Starts an account's next calendar period: spent = 0 and the new bounds, when the period
  stored has ended by the server's clock and the bounds the client computed (for the server
  time a script answered {-9, now, every, zone} with) contain the server's now. Holds are
  untouched. Idempotent: a period already rolled (by another client) is left alone.

  Input:
    KEYS[1] account: account hash (spent, pevery, pzone, pstart, pend; see includes/period)

    ARGV[1] every: the period the bounds were computed for (day, week or month)
    ARGV[2] zone: its IANA time zone
    ARGV[3] start: the period's first ms, integer string
    ARGV[4] end: the ms after its last, integer string

  Output:
     {1}          rolled now
     {0}          nothing to do: rolled already, or the account's period changed since
    {-9, now, every, zone}  the bounds do not contain the server's now: compute them again
    {-10, field}  the bounds are not a calendar period (field: period.start or period.end;
                 negative, not integers, end <= start, or longer than 33 days): nothing is
                 written
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/period"

local bad = badBounds(ARGV[3], ARGV[4])
if bad then
  return bad
end
local now = nowMs()
local v = rcall("HMGET", KEYS[1], "pevery", "pzone", "pend")
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] or not v[3] or now < tonumber(v[3]) then
  return {0}
end
if now < tonumber(ARGV[3]) or now >= tonumber(ARGV[4]) then
  return {-9, integerString(now), v[1], v[2]}
end
rcall("HSET", KEYS[1], "spent", "0", "pstart", ARGV[3], "pend", ARGV[4])
return {1}
