--[[
  Reserves quota: checks the limit and creates a hold atomically, retry-safe by holdId.

  Input:
    KEYS[1] account hash (limit, spent, held)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record (string "<state>|<amount>|<actual>")

    ARGV[1] holdId
    ARGV[2] amount, integer string > 0
    ARGV[3] ttlMs, integer string > 0
    ARGV[4] hold record TTL in ms while held (ttlMs + retention), integer string

  Output:
     {1, remaining}  granted: a new hold
     {2, remaining}  granted before: a retry (same answer, held once)
     {0, remaining}  insufficient: nothing is held
    {-1, stored}     idempotency conflict: the holdId was reserved with another amount
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

local now = nowMs()
sweepExpired(KEYS[1], KEYS[2], now)

local stored = rcall("GET", KEYS[3])
if stored then
  local hold = splitHold(stored)
  if hold[2] ~= ARGV[2] then
    return {-1, hold[2]}
  end
  return {2, availableUnits(KEYS[1])}
end

local room = availableUnits(KEYS[1])
if tonumber(ARGV[2]) > room then
  return {0, room}
end

rcall("SET", KEYS[3], "held|" .. ARGV[2] .. "|", "PX", ARGV[4])
rcall("ZADD", KEYS[2], integerString(now + tonumber(ARGV[3])), ARGV[2] .. "|" .. ARGV[1])
rcall("HINCRBY", KEYS[1], "held", ARGV[2])
return {1, room - tonumber(ARGV[2])}
